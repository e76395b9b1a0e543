#!/usr/bin/env bash
# The test command: installs the tools the end-to-end tests drive (a real registry, skopeo,
# umoci, compressors, a headless browser) when missing, then builds and runs the whole test suite.
# Works unattended (CI=true, no stdin). Extra arguments go to the test runner,
# e.g. `scripts/test.sh --test e2e_tools`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# rustup installs into ~/.cargo/bin, which a non-login shell may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

say() { printf '==> %s\n' "$*" >&2; }

# A CI checkout is built once: incremental state would only take disk. The free space is
# printed so that a run that fills the disk says so up front.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi
say "free disk: $(df -h --output=avail . | tail -1 | tr -d ' ')"

# Debian packages the tests need, and a command each one provides. A test whose tool is
# missing fails (it never skips), so every one of them is installed here. docker.io brings
# the Docker CLI and engine that tests/e2e_docker.rs drives; bsdutils the `script` that gives
# tests/e2e_cli/ a terminal; chromium and chromium-driver the headless browser that
# tests/e2e_page/ drives through WebDriver; nasm and the autotools build ISA-L (the gzip of
# layers, src/codec/isal.rs) from source.
packages=(nasm autoconf automake libtool make docker-registry skopeo umoci busybox-static curl pigz gzip zstd xz-utils bzip2 openssl docker.io bsdutils chromium chromium-driver)
commands=(nasm autoconf automake libtoolize make docker-registry skopeo umoci busybox curl pigz gzip zstd xz bzip2 openssl docker script chromium chromedriver)

missing=()
for i in "${!commands[@]}"; do
    command -v "${commands[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done

if [ "${#missing[@]}" -gt 0 ]; then
    say "installing test tools (missing: ${missing[*]})"
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo -n)
    else
        say "not root and no sudo: install ${missing[*]} yourself"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update </dev/null
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
fi

# tests/e2e_docker.rs needs a Docker engine that answers, not just the CLI. Machines that run
# one start it before the tests; otherwise try to start the packaged one (bounded wait).
if ! docker info >/dev/null 2>&1; then
    say "no Docker engine answers: starting it"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    "${sudo[@]}" service docker start </dev/null >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || say "still no Docker engine: tests/e2e_docker.rs will fail"
fi

# The Kubernetes manifests' schema validator, from PyPI, pinned, in a venv under target/
# (tests/e2e_deploy.rs looks for it there, or on PATH; without it that test fails).
k8s_validate_version=1.37.0
k8s_venv=target/k8s-validate
if [ "$("$k8s_venv/bin/kubernetes-validate" --version 2>/dev/null)" != "$k8s_validate_version" ]; then
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        say "installing python3-venv (for the Kubernetes manifest validator)"
        if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo -n); fi
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update </dev/null
        "${sudo[@]}" apt-get install -y --no-install-recommends python3 python3-venv </dev/null
    fi
    say "installing kubernetes-validate==$k8s_validate_version into $k8s_venv"
    rm -rf "$k8s_venv"
    python3 -m venv "$k8s_venv"
    "$k8s_venv/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$k8s_validate_version" </dev/null
fi

# Debian's docker-registry package starts a service on :5000. The tests start their own
# registries on random loopback ports, so it does not get in their way, but stop it so that
# :5000 stays free for scripts/run-local.sh.
stop_packaged_registry() {
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
        say "stopping the packaged docker-registry service (port 5000)"
        "${sudo[@]}" systemctl stop docker-registry </dev/null || true
    elif command -v service >/dev/null 2>&1 && service docker-registry status >/dev/null 2>&1; then
        say "stopping the packaged docker-registry service (port 5000)"
        "${sudo[@]}" service docker-registry stop </dev/null || true
    fi
}
stop_packaged_registry

# Hygiene first: formatting and lints are part of the suite (skipped only where the
# toolchain lacks the component).
if cargo fmt --version >/dev/null 2>&1; then
    say "cargo fmt --check"
    cargo fmt --all -- --check
fi
if cargo clippy --version >/dev/null 2>&1; then
    # The build without ISA-L (zlib-rs only) is linted too, so it keeps compiling.
    say "cargo clippy --all-targets -- -D warnings; the same for --lib --no-default-features"
    if [ "${CI:-}" = true ]; then
        # The build below cannot reuse what clippy checks, so in CI the lint artifacts go to
        # a directory of their own that is removed before the build needs the disk.
        CARGO_TARGET_DIR=target/lint cargo clippy --all-targets -- -D warnings
        CARGO_TARGET_DIR=target/lint cargo clippy --lib --no-default-features -- -D warnings
        rm -rf target/lint
    else
        cargo clippy --all-targets -- -D warnings
        cargo clippy --lib --no-default-features -- -D warnings
    fi
fi

say "cargo build --tests"
cargo build --tests
say "built; free disk: $(df -h --output=avail . | tail -1 | tr -d ' '), target/: $(du -sh target | cut -f1)"

if cargo nextest --version >/dev/null 2>&1; then
    say "cargo nextest run --no-fail-fast $*"
    cargo nextest run --no-fail-fast "$@"
else
    say "cargo-nextest not found; cargo test --no-fail-fast $*"
    cargo test --no-fail-fast "$@"
fi
