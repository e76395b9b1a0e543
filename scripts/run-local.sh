#!/usr/bin/env bash
# Runs hoist locally against a throwaway registry:
#   registry  http://127.0.0.1:5000   (config, storage and log in .hoist-dev/)
#   hoist     http://127.0.0.1:8080   (until Ctrl-C, which stops both)
# Extra arguments go to `hoist serve` (e.g. --config config/hoist.toml).
# Other ports: RUN_LOCAL_REGISTRY_PORT=5001 RUN_LOCAL_HOIST_PORT=8081 scripts/run-local.sh
# Needs: Rust 1.88+ (rustup), a C compiler (gcc), curl, and root or sudo to apt-get install
# docker-registry and the build's tools (nasm, autotools) when they are missing. The first release build takes about 4 minutes.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
dev="$root/.hoist-dev"
registry_addr=127.0.0.1:${RUN_LOCAL_REGISTRY_PORT:-5000}
hoist_addr=127.0.0.1:${RUN_LOCAL_HOIST_PORT:-8080}

if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

say() { printf '==> %s\n' "$*" >&2; }
die() { say "$@"; exit 1; }

# What holds a TCP port on 127.0.0.1, as `ss` tells it (empty when nothing does or when ss
# is missing).
holder() {
    command -v ss >/dev/null 2>&1 || return 0
    ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*))' | head -n1 || true
}

# Fails, naming the port and whoever holds it, when something already listens there.
# Checked before anything is built or started: a taken port is found in a second, not after
# a 4-minute build, and never after the success banner.
check_free() {
    local addr=$1 what=$2 port=${1##*:}
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        local who
        who=$(holder "$port")
        say "$addr is already in use (wanted for $what)${who:+ by $who}."
        case "$who" in
            *docker-registry*)
                say "That is a docker-registry, maybe Debian's packaged service:" \
                    "systemctl stop docker-registry (or service docker-registry stop)." ;;
            *hoist*)
                say "That is a hoist: another scripts/run-local.sh still running?" ;;
        esac
        die "Stop it, or pick other ports: RUN_LOCAL_REGISTRY_PORT / RUN_LOCAL_HOIST_PORT."
    fi
}
check_free "$registry_addr" "the registry"
check_free "$hoist_addr" "hoist"

# Debian packages, and a command each provides: the build makes ISA-L (the gzip of layers)
# from source with nasm and the autotools; the registry is Debian's.
packages=(nasm autoconf automake libtool make docker-registry)
commands=(nasm autoconf automake libtoolize make docker-registry)
missing=()
for i in "${!commands[@]}"; do
    command -v "${commands[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo: apt-get install ${missing[*]} as root"
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
    # The registry package starts its own service on :5000; ours wants that port.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
        "${sudo[@]}" systemctl stop docker-registry || true
    elif command -v service >/dev/null 2>&1 && service docker-registry status >/dev/null 2>&1; then
        "${sudo[@]}" service docker-registry stop || true
    fi
    check_free "$registry_addr" "the registry"
fi

if [ -z "${RUN_LOCAL_NO_BUILD:-}" ]; then
    command -v cc >/dev/null 2>&1 || die "no C compiler (cc): apt-get install gcc"
    say "cargo build --release (the first build takes about 4 minutes)"
    cargo build --release
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

up=
for _ in $(seq 1 100); do
    if curl -s -o /dev/null --max-time 1 "http://$registry_addr/v2/"; then up=1; break; fi
    kill -0 "$registry_pid" 2>/dev/null || die "docker-registry exited; see .hoist-dev/registry.log"
    sleep 0.1
done
[ -n "$up" ] || die "docker-registry did not answer on $registry_addr within 10 s; see .hoist-dev/registry.log"

say "starting hoist on $hoist_addr"
# In the background so that a signal to this script (Ctrl-C, kill) runs the cleanup at once.
"$root/target/release/hoist" serve --listen "$hoist_addr" --registry "http://$registry_addr" "$@" &
hoist_pid=$!

# The banner only once hoist answers: a port taken meanwhile, or a bad flag, shows as such.
ready=
for _ in $(seq 1 100); do
    if curl -s -o /dev/null --max-time 1 "http://$hoist_addr/healthz"; then ready=1; break; fi
    kill -0 "$hoist_pid" 2>/dev/null || die "hoist exited (its error is above)"
    sleep 0.1
done
[ -n "$ready" ] || die "hoist did not answer on $hoist_addr within 10 s"

cat >&2 <<TXT

  Push an image archive (docker save / podman save / skopeo copy ... docker-archive: or oci-archive:):

    curl -T image.tar.gz http://$hoist_addr/push/myteam/app:1.0

  Read it back:

    skopeo inspect --tls-verify=false docker://$registry_addr/myteam/app:1.0

  Ready? curl http://$hoist_addr/readyz     Metrics: curl http://$hoist_addr/metrics
  Ctrl-C stops hoist and the registry.

TXT

wait "$hoist_pid"
