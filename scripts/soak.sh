#!/usr/bin/env bash
# Soak test (not in CI): builds hoist (release) and runs scripts/soak.py against a real
# registry on loopback. Arguments go to soak.py (--clients N --minutes M ...; --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v docker-registry >/dev/null || { echo "install docker-registry" >&2; exit 1; }
cargo build --release --quiet
exec python3 scripts/soak.py --hoist target/release/hoist "$@"
