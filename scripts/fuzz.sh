#!/usr/bin/env bash
# The property suite (tests/properties/) run long: CASES cases per property (default 20000),
# the whole run bounded by TIMEOUT seconds (default 3600). The suite itself runs 256 cases.
# A failure prints the input proptest shrank it to and keeps it in proptest-regressions/.
#   scripts/fuzz.sh                 # every property
#   CASES=100000 scripts/fuzz.sh walk::   # one module
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PROPTEST_CASES="${CASES:-20000}"
export PROPTEST_MAX_SHRINK_TIME=60000
exec timeout "${TIMEOUT:-3600}" cargo nextest run --release --test properties --no-fail-fast "$@"
