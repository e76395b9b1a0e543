#!/usr/bin/env bash
# Runs hoist locally against a throwaway registry:
#   registry  http://127.0.0.1:5000   (config, storage and log in .hoist-dev/)
#   hoist     http://127.0.0.1:8080   (until Ctrl-C, which stops both)
# Extra arguments go to `hoist serve` (e.g. --config config/hoist.toml).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
dev="$root/.hoist-dev"
registry_addr=127.0.0.1:5000
hoist_addr=127.0.0.1:8080

if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

say() { printf '==> %s\n' "$*" >&2; }

say "cargo build --release"
cargo build --release

if ! command -v docker-registry >/dev/null 2>&1; then
    say "installing docker-registry"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends docker-registry
    # The package starts its own service on :5000; ours takes that port.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
        "${sudo[@]}" systemctl stop docker-registry || true
    elif command -v service >/dev/null 2>&1 && service docker-registry status >/dev/null 2>&1; then
        "${sudo[@]}" service docker-registry stop || true
    fi
fi

if curl -s -o /dev/null --max-time 2 "http://$registry_addr/v2/"; then
    say "something already listens on $registry_addr (the packaged docker-registry service?"
    say "stop it: systemctl stop docker-registry, or service docker-registry stop)"
    exit 1
fi

mkdir -p "$dev/registry"
cat > "$dev/registry.yml" <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dev/registry
  delete:
    enabled: true
http:
  addr: $registry_addr
  secret: hoist-dev-secret
YAML

say "starting docker-registry on $registry_addr (log: .hoist-dev/registry.log)"
docker-registry serve "$dev/registry.yml" >>"$dev/registry.log" 2>&1 &
registry_pid=$!
echo "$registry_pid" >"$dev/registry.pid"

hoist_pid=
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$hoist_pid" ] && kill -0 "$hoist_pid" 2>/dev/null; then
        say "stopping hoist (pid $hoist_pid)"
        kill "$hoist_pid" 2>/dev/null || true
        wait "$hoist_pid" 2>/dev/null || true
    fi
    if kill -0 "$registry_pid" 2>/dev/null; then
        say "stopping docker-registry (pid $registry_pid)"
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    rm -f "$dev/registry.pid"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "http://$registry_addr/v2/" && break
    kill -0 "$registry_pid" 2>/dev/null || { say "docker-registry exited; see .hoist-dev/registry.log"; exit 1; }
    sleep 0.1
done

cat >&2 <<TXT

  Push an image archive (docker save / podman save / skopeo copy ... docker-archive: or oci-archive:):

    curl -T image.tar.gz http://$hoist_addr/push/myteam/app:1.0

  Read it back:

    skopeo inspect --tls-verify=false docker://$registry_addr/myteam/app:1.0

  Ctrl-C stops hoist and the registry.

TXT

say "starting hoist on $hoist_addr"
# In the background so that a signal to this script (Ctrl-C, kill) runs the cleanup at once.
"$root/target/release/hoist" serve --listen "$hoist_addr" --registry "http://$registry_addr" "$@" &
hoist_pid=$!
wait "$hoist_pid"
