#!/usr/bin/env bash
# End-to-end push benchmark: hoist against skopeo and against the registry's own ingest.
#
# Builds (once, cached in $BENCH_DIR/fixtures) a ~$BENCH_SIZE_MB MB image from real files
# (/usr/lib/x86_64-linux-gnu, then /usr/share, /usr/lib/jvm, /usr/lib) as $BENCH_LAYERS
# layers, then times, each against a FRESH docker-registry (new storage dir):
#   a  skopeo copy docker-archive:img.tar -> registry            (baseline A)
#   b  hoist, curl -T img.tar.gz   (docker-archive, gzipped)     vs a
#   c  hoist, curl -T img.tar      (docker-archive, plain)       vs a
#   d  hoist, curl -T oci.tar.gz   (oci-archive, gzipped)        vs e
#   e  registry ingest: POST + one PATCH + PUT per blob of the OCI layout, then the
#      manifest PUT, with curl (baseline B: the registry's own speed at storing the bytes)
#   s  hoist, curl -T small.tar.gz (first layer only, ~1/$BENCH_LAYERS size): peak RSS
# and prints a table (also $BENCH_DIR/results.md) and the issue's three target checks.
# A MISS is reported, not an error: the script exits 0 unless the harness itself breaks.
#
# Environment:
#   BENCH_DIR      work dir (default /tmp/hoist-bench); fixtures are cached in it
#   BENCH_SIZE_MB  image size in MB of file content (default 1100; 1 MB = 10^6 bytes)
#   BENCH_LAYERS   number of layers (default 4)
#   HOIST_BIN      hoist binary (default: target/release/hoist, built with cargo first)
#   BENCH_NO_BUILD=1  do not run `cargo build --release`
#   BENCH_TOP=1    sample `top -H` (1/s) of hoist and the registry during hoist cases
#                  into $BENCH_DIR/runs/CASE/top.txt (per-thread CPU totals are always
#                  written to runs/CASE/hoist-threads.txt)
#   BENCH_IDLE_WAIT  before each case, wait up to this many seconds (default 60) for the
#                  machine to be idle (other processes under 1/4 core over 2 s)
#   BENCH_CASES    cases to run (default "a b c d e s"; empty: build the fixtures only)
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/hoist-bench}
BENCH_SIZE_MB=${BENCH_SIZE_MB:-1100}
BENCH_LAYERS=${BENCH_LAYERS:-4}
BENCH_CASES=${BENCH_CASES-a b c d e s}
HOIST_BIN=${HOIST_BIN:-$repo_root/target/release/hoist}

say() { printf '==> %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

for cmd in docker-registry skopeo umoci pigz curl jq perl tar /usr/bin/time; do
    command -v "$cmd" >/dev/null 2>&1 ||
        die "$cmd not found (apt-get install docker-registry skopeo umoci pigz curl jq perl tar time)"
done

if [ "${BENCH_NO_BUILD:-0}" != 1 ] && [ "$HOIST_BIN" = "$repo_root/target/release/hoist" ]; then
    if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
        export PATH="${HOME:-/root}/.cargo/bin:$PATH"
    fi
    say "cargo build --release"
    (cd "$repo_root" && cargo build --release)
fi
[ -x "$HOIST_BIN" ] || die "hoist binary $HOIST_BIN not found"

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
fx=$BENCH_DIR/fixtures
runs=$BENCH_DIR/runs
layout=$fx/oci-layout
clk_tck=$(getconf CLK_TCK)

# ---------------------------------------------------------------- process bookkeeping
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_pid() {
    local p=$1 q kept=()
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    for q in "${pids[@]}"; do [ "$q" = "$p" ] || kept+=("$q"); done
    pids=("${kept[@]+"${kept[@]}"}")
}

now() { date +%s.%N; }
# CPU seconds (user+sys) a live process has used so far.
cpu_of() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    # Fields after "(comm) ": state is $1, utime $12, stime $13.
    echo "${stat##*) }" | awk -v t="$clk_tck" '{ printf "%.1f", ($12 + $13) / t }'
}
# Peak resident set (VmHWM) of a live process, in MiB.
hwm_mib_of() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0
}
# CPU seconds per thread of a live process, busiest first: "seconds tid name".
threads() {
    local t stat
    for t in /proc/"$1"/task/*; do
        stat=$(cat "$t/stat" 2>/dev/null) || continue
        echo "${stat##*) }" | awk -v t="$clk_tck" -v id="${t##*/}" -v c="$(cat "$t/comm")" \
            '{ printf "%6.1f %s %s\n", ($12 + $13) / t, id, c }'
    done | sort -rn
}
# CPU seconds the whole machine has been busy (all cores, all processes) since boot.
machine_busy() {
    awk -v t="$clk_tck" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t }' /proc/stat
}
# machine_cpu KEY T0BUSY: busy CPU seconds of the whole machine during the case.
machine_cpu() {
    MCPU[$1]=$(awk -v a="$2" -v b="$(machine_busy)" 'BEGIN { printf "%.1f", b - a }')
}
# On a shared machine: wait (at most $BENCH_IDLE_WAIT s) for a 2 s window in which other
# processes use under a quarter of a core, so a case does not start in someone's build.
wait_idle() {
    local deadline=$((SECONDS + ${BENCH_IDLE_WAIT:-60})) a b
    while :; do
        a=$(machine_busy)
        sleep 2
        b=$(machine_busy)
        if awk -v a="$a" -v b="$b" 'BEGIN { exit !((b - a) / 2 < 0.25) }'; then return; fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "machine still busy ($(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.0f", (b - a) * 50 }')% of a core); starting anyway"
            return
        fi
    done
}
size_of() { stat -c %s "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_free "$p" && { echo "$p"; return; }
    done
}

# ---------------------------------------------------------------- registry and hoist
# start_registry NAME: a fresh docker-registry with storage in $runs/NAME/registry.
# Sets REG_PID, REG_PORT, REG_URL, REG_HOST.
start_registry() {
    local dir=$runs/$1 try
    rm -rf "$dir"
    mkdir -p "$dir/registry"
    for try in 1 2 3 4 5; do
        REG_PORT=$(free_port)
        cat >"$dir/registry.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$REG_PORT
  secret: hoist-bench-secret
YAML
        docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
        REG_PID=$!
        pids+=("$REG_PID")
        local i
        for i in $(seq 1 100); do
            if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$REG_PORT/v2/"; then
                REG_HOST=127.0.0.1:$REG_PORT
                REG_URL=http://$REG_HOST
                return 0
            fi
            kill -0 "$REG_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop_pid "$REG_PID"
        say "registry did not start on port $REG_PORT (try $try); see $dir/registry.log"
    done
    die "could not start docker-registry"
}

# start_hoist NAME: a fresh hoist process against $REG_URL. Sets HOIST_PID, HOIST_URL.
start_hoist() {
    local dir=$runs/$1 i line
    : >"$dir/hoist.out"
    "$HOIST_BIN" serve --listen 127.0.0.1:0 --registry "$REG_URL" \
        >"$dir/hoist.out" 2>"$dir/hoist.log" &
    HOIST_PID=$!
    pids+=("$HOIST_PID")
    for i in $(seq 1 200); do
        line=$(grep -m1 -o 'hoist listening on http://[^ ]*' "$dir/hoist.out" 2>/dev/null || true)
        if [ -n "$line" ]; then
            HOIST_URL=${line#hoist listening on }
            return 0
        fi
        kill -0 "$HOIST_PID" 2>/dev/null || die "hoist exited; see $dir/hoist.log"
        sleep 0.05
    done
    die "hoist did not print its address; see $dir/hoist.log"
}

# Page cache warm and dirty pages flushed, so each case starts from the same state.
settle() {
    cat "$@" >/dev/null
    sync
    wait_idle
}

finish_case() { # NAME: stop servers, drop the registry's storage
    [ -n "${HOIST_PID:-}" ] && stop_pid "$HOIST_PID"
    stop_pid "$REG_PID"
    HOIST_PID=
    rm -rf "$runs/$1/registry"
}

# ---------------------------------------------------------------- fixtures
build_fixtures() {
    local stamp="size_mb=$BENCH_SIZE_MB layers=$BENCH_LAYERS fixture_version=3"
    if [ -f "$fx/stamp" ] && [ "$(cat "$fx/stamp")" = "$stamp" ] &&
        [ -f "$fx/img.tar" ] && [ -f "$fx/img.tar.gz" ] && [ -f "$fx/oci.tar.gz" ] &&
        [ -f "$fx/small.tar.gz" ] && [ -f "$layout/index.json" ]; then
        say "fixtures cached in $fx ($stamp)"
        return
    fi
    say "building fixtures in $fx ($stamp); not timed"
    rm -rf "$fx"
    mkdir -p "$fx/lists"
    local target=$((BENCH_SIZE_MB * 1000000))

    # Pick real files, in a fixed order, until the target size; split them into layers of
    # about equal size. Lists are NUL-separated paths relative to /.
    perl -e '
        use strict; use warnings;
        my ($target, $n, $out, @roots) = @ARGV;
        my (%seen, @picked);
        my $total = 0;
        ROOT: for my $root (@roots) {
            next unless -d $root;
            open(my $find, "-|", "find", $root, "-xdev", "-type", "f", "-readable", "-print0")
                or die $!;
            my @paths = do { local $/ = "\0"; map { chomp; $_ } <$find> };
            close $find;
            for my $p (sort @paths) {
                # Each file once: hard links (e.g. the 13 names of one dri driver) would
                # make a tar far smaller than the sum of the sizes.
                my @st = lstat $p;
                next unless @st && $st[7] > 0;
                next if $seen{"$st[0]:$st[1]"}++;
                my $s = $st[7];
                push @picked, [$p, $s];
                $total += $s;
                last ROOT if $total >= $target;
            }
        }
        die "only $total bytes of files found, fewer than $target\n" if $total < $target;
        # Greedy split: a layer is closed once it holds total/n bytes.
        my ($i, $cur) = (0, 0);
        my @fh;
        for my $k (0 .. $n - 1) { open($fh[$k], ">", "$out/layer-$k.list") or die $!; }
        for my $f (@picked) {
            if ($cur >= $total / $n && $i < $n - 1) { $i++; $cur = 0; }
            (my $rel = $f->[0]) =~ s{^/+}{};
            print { $fh[$i] } "$rel\0";
            $cur += $f->[1];
        }
        close $_ for @fh;
        printf STDERR "==> picked %.1f MB in %d files\n", $total / 1e6, scalar @picked;
    ' "$target" "$BENCH_LAYERS" "$fx/lists" \
        /usr/lib/x86_64-linux-gnu /usr/share /usr/lib/jvm /usr/lib

    umoci init --layout "$layout"
    umoci new --image "$layout:v1"
    local i
    for i in $(seq 0 $((BENCH_LAYERS - 1))); do
        rm -rf "$fx/rootfs"
        mkdir -p "$fx/rootfs"
        tar -C / --null -T "$fx/lists/layer-$i.list" -cf - | tar -C "$fx/rootfs" -xf -
        say "layer $i: $(du -sh "$fx/rootfs" | cut -f1)"
        umoci insert --image "$layout:v1" "$fx/rootfs" "/data/$i"
        if [ "$i" = 0 ]; then
            umoci tag --image "$layout:v1" small
        fi
    done
    rm -rf "$fx/rootfs"
    umoci gc --layout "$layout"

    say "skopeo copy -> docker-archive (uncompressed layers), oci-archive (gzip layers)"
    skopeo --insecure-policy copy -q "oci:$layout:v1" "docker-archive:$fx/img.tar:bench/app:v1"
    skopeo --insecure-policy copy -q "oci:$layout:small" "docker-archive:$fx/small.tar:bench/app:small"
    skopeo --insecure-policy copy -q "oci:$layout:v1" "oci-archive:$fx/oci.tar:v1"
    say "pigz -6"
    pigz -6 -k -f "$fx/img.tar"
    pigz -6 -f "$fx/small.tar"
    pigz -6 -f "$fx/oci.tar"
    echo "$stamp" >"$fx/stamp"
}

# The blobs (config + layers) and manifest of $layout:TAG. Sets MANIFEST_FILE, BLOBS.
layout_image() {
    local desc digest
    desc=$(jq -c --arg t "$1" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)' \
        "$layout/index.json")
    digest=$(jq -r .digest <<<"$desc")
    MANIFEST_DIGEST=$digest
    MANIFEST_TYPE=$(jq -r .mediaType <<<"$desc")
    MANIFEST_FILE=$layout/blobs/sha256/${digest#sha256:}
    mapfile -t BLOBS < <(jq -r '.layers[].digest, .config.digest' "$MANIFEST_FILE")
}

# ---------------------------------------------------------------- cases
declare -A SECS IN_BYTES STATUS RSS HCPU RCPU MCPU EXTRA

# hoist_case KEY FILE TAG
hoist_case() {
    local key=$1 file=$2 tag=$3 dir=$runs/$1 t0 t1 b0 code rc=0
    start_registry "$key"
    start_hoist "$key"
    settle "$file"
    local top_pid=
    if [ "${BENCH_TOP:-0}" = 1 ]; then
        top -H -b -d 1 -w 160 -p "$HOIST_PID,$REG_PID" >"$dir/top.txt" 2>&1 &
        top_pid=$!
        pids+=("$top_pid")
    fi
    say "case $key: curl -T $(basename "$file") $HOIST_URL/push/bench/app:$tag"
    b0=$(machine_busy)
    t0=$(now)
    code=$(curl -sS --fail-with-body -T "$file" -o "$dir/response.json" -w '%{http_code}' \
        "$HOIST_URL/push/bench/app:$tag") || rc=$?
    t1=$(now)
    machine_cpu "$key" "$b0"
    SECS[$key]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    IN_BYTES[$key]=$(size_of "$file")
    RSS[$key]=$(hwm_mib_of "$HOIST_PID")
    HCPU[$key]=$(cpu_of "$HOIST_PID")
    RCPU[$key]=$(cpu_of "$REG_PID")
    [ -n "$top_pid" ] && stop_pid "$top_pid"
    threads "$HOIST_PID" >"$dir/hoist-threads.txt"
    if [ "$rc" = 0 ] && [ "$code" = 201 ] &&
        skopeo inspect --tls-verify=false "docker://$REG_HOST/bench/app:$tag" \
            >"$dir/inspect.json" 2>"$dir/inspect.err"; then
        STATUS[$key]=ok
        EXTRA[$key]="sent $(mb "$(jq '.bytes_sent' "$dir/response.json")") MB to the registry"
    else
        STATUS[$key]="FAIL(http ${code:-?}, curl $rc)"
        say "case $key FAILED: http ${code:-?}, curl exit $rc; $(head -c 400 "$dir/response.json" 2>/dev/null)"
        say "  hoist log: $dir/hoist.log"
    fi
    finish_case "$key"
}

case_a() {
    local dir=$runs/a t0 t1 b0 rc=0
    start_registry a
    HOIST_PID=
    settle "$fx/img.tar"
    say "case a: skopeo copy docker-archive:img.tar docker://$REG_HOST/bench/skopeo:v1"
    b0=$(machine_busy)
    t0=$(now)
    /usr/bin/time -f '%e %M %U %S' -o "$dir/time.txt" \
        skopeo --insecure-policy copy -q --dest-tls-verify=false \
        "docker-archive:$fx/img.tar" "docker://$REG_HOST/bench/skopeo:v1" \
        >"$dir/skopeo.log" 2>&1 || rc=$?
    t1=$(now)
    machine_cpu a "$b0"
    SECS[a]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    IN_BYTES[a]=$(size_of "$fx/img.tar")
    RCPU[a]=$(cpu_of "$REG_PID")
    local t
    t=$(tail -n1 "$dir/time.txt")
    HCPU[a]=$(awk '{ printf "%.1f", $3 + $4 }' <<<"$t")
    EXTRA[a]="skopeo CPU ${HCPU[a]} s, max RSS $(awk '{ printf "%.0f", $2 / 1024 }' <<<"$t") MiB"
    RSS[a]=-
    if [ "$rc" = 0 ]; then STATUS[a]=ok; else
        STATUS[a]="FAIL(skopeo $rc)"
        say "case a FAILED; see $dir/skopeo.log"
    fi
    finish_case a
}

case_e() {
    local dir=$runs/e t0 t1 b0 d hdr code loc ok=1 total=0 base
    layout_image v1
    start_registry e
    HOIST_PID=
    for d in "${BLOBS[@]}"; do total=$((total + $(size_of "$layout/blobs/sha256/${d#sha256:}"))); done
    settle "${BLOBS[@]/#sha256:/$layout/blobs/sha256/}" "$MANIFEST_FILE"
    base=$REG_URL
    hdr=$dir/headers
    say "case e: registry ingest of ${#BLOBS[@]} blobs ($(mb "$total") MB) with curl"
    location() { grep -i '^location:' "$hdr" | tail -n1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
    absolute() { case $1 in /*) echo "$base$1" ;; *) echo "$1" ;; esac; }
    b0=$(machine_busy)
    t0=$(now)
    for d in "${BLOBS[@]}"; do
        code=$(curl -sS -X POST -D "$hdr" -o /dev/null -w '%{http_code}' \
            "$base/v2/bench/raw/blobs/uploads/") || code=x
        [ "$code" = 202 ] || { ok=0; say "POST: $code"; break; }
        loc=$(absolute "$(location)")
        code=$(curl -sS -X PATCH -T "$layout/blobs/sha256/${d#sha256:}" \
            -H 'Content-Type: application/octet-stream' -D "$hdr" -o /dev/null \
            -w '%{http_code}' "$loc") || code=x
        [ "$code" = 202 ] || { ok=0; say "PATCH: $code"; break; }
        loc=$(absolute "$(location)")
        case $loc in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
        code=$(curl -sS -X PUT -H 'Content-Length: 0' -o /dev/null -w '%{http_code}' "$loc") ||
            code=x
        [ "$code" = 201 ] || { ok=0; say "PUT: $code"; break; }
    done
    if [ "$ok" = 1 ]; then
        code=$(curl -sS -X PUT -H "Content-Type: $MANIFEST_TYPE" --data-binary "@$MANIFEST_FILE" \
            -o "$dir/manifest-put.txt" -w '%{http_code}' "$base/v2/bench/raw/manifests/v1") ||
            code=x
        [ "$code" = 201 ] || { ok=0; say "manifest PUT: $code $(cat "$dir/manifest-put.txt")"; }
    fi
    t1=$(now)
    machine_cpu e "$b0"
    SECS[e]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    IN_BYTES[e]=$total
    RCPU[e]=$(cpu_of "$REG_PID")
    HCPU[e]=-
    RSS[e]=-
    EXTRA[e]="${#BLOBS[@]} blobs, one PATCH each, sequential"
    if [ "$ok" = 1 ] && skopeo inspect --tls-verify=false "docker://$REG_HOST/bench/raw:v1" \
        >"$dir/inspect.json" 2>"$dir/inspect.err"; then
        STATUS[e]=ok
    else
        STATUS[e]=FAIL
    fi
    finish_case e
}

# ---------------------------------------------------------------- run
build_fixtures
rm -rf "$runs"
mkdir -p "$runs"

say "fixtures:"
for f in img.tar img.tar.gz oci.tar.gz small.tar.gz; do
    printf '    %-13s %9s MB\n' "$f" "$(mb "$(size_of "$fx/$f")")" >&2
done
layout_image v1
say "OCI layout v1: ${#BLOBS[@]} blobs (layers + config); layer sizes (gzip):"
jq -r '.layers[] | "    \(.digest[7:19])  \(.size / 1e6 * 10 | floor / 10) MB"' "$MANIFEST_FILE" >&2

if [ -z "${BENCH_CASES// /}" ]; then
    say "BENCH_CASES is empty: fixtures only"
    exit 0
fi

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

for c in $BENCH_CASES; do
    case $c in
        a) case_a ;;
        b) hoist_case b "$fx/img.tar.gz" gz ;;
        c) hoist_case c "$fx/img.tar" plain ;;
        d) hoist_case d "$fx/oci.tar.gz" oci ;;
        e) case_e ;;
        s) hoist_case s "$fx/small.tar.gz" small ;;
        *) die "unknown case $c" ;;
    esac
    say "case $c: ${SECS[$c]} s, ${STATUS[$c]}"
done

# ---------------------------------------------------------------- report
ratio() { # KEY BASE
    if [ -n "${SECS[$1]:-}" ] && [ -n "${SECS[$2]:-}" ]; then
        awk -v x="${SECS[$1]}" -v y="${SECS[$2]}" 'BEGIN { printf "%.2f", x / y }'
    else echo -; fi
}
declare -A DESC=(
    [a]="skopeo copy docker-archive img.tar (baseline A)"
    [b]="hoist, docker-archive img.tar.gz"
    [c]="hoist, docker-archive img.tar"
    [d]="hoist, oci-archive oci.tar.gz"
    [e]="registry ingest, curl PATCH per blob (baseline B)"
    [s]="hoist, docker-archive small.tar.gz (first layer)"
)
declare -A BASE=([b]=a [c]=a [d]=e [s]=-)

md=$BENCH_DIR/results.md
{
    echo "# hoist push benchmark"
    echo
    echo "- date: $started; machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); load average before: $load_before"
    echo "- image: $BENCH_SIZE_MB MB of files in $BENCH_LAYERS layers; img.tar $(mb "$(size_of "$fx/img.tar")") MB, img.tar.gz $(mb "$(size_of "$fx/img.tar.gz")") MB, oci.tar.gz $(mb "$(size_of "$fx/oci.tar.gz")") MB, small.tar.gz $(mb "$(size_of "$fx/small.tar.gz")") MB"
    echo "- hoist: $HOIST_BIN ($(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo '?'), built $(date -u -r "$HOIST_BIN" '+%Y-%m-%d %H:%M UTC')); $(skopeo --version); $(docker-registry --version 2>&1 | awk '{ print "docker-registry", $NF }')"
    echo "- MB = 10^6 bytes; MB/s is of the input file as sent; CPU is user+sys seconds during the case; machine CPU is every process on the machine (the rest of it is curl and whatever else ran: a 2-core machine has 2 CPU s per second)"
    echo
    echo "| case | what | input MB | seconds | input MB/s | ratio | hoist peak RSS MiB | client/hoist CPU s | registry CPU s | machine CPU s | status |"
    echo "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|"
    for c in $BENCH_CASES; do
        r=-
        if [ "${BASE[$c]:--}" != - ]; then r="$(ratio "$c" "${BASE[$c]}") × $(tr a-z A-Z <<<"${BASE[$c]}")"; fi
        mbs=$(awk -v b="${IN_BYTES[$c]}" -v s="${SECS[$c]}" 'BEGIN { printf "%.0f", b / 1e6 / s }')
        echo "| $c | ${DESC[$c]} | $(mb "${IN_BYTES[$c]}") | ${SECS[$c]} | $mbs | $r | ${RSS[$c]} | ${HCPU[$c]} | ${RCPU[$c]} | ${MCPU[$c]} | ${STATUS[$c]} |"
    done
    echo
    for c in $BENCH_CASES; do
        [ -n "${EXTRA[$c]:-}" ] && echo "- $c: ${EXTRA[$c]}"
    done
    echo
    echo "Targets:"
    echo
    check() { # LABEL OK(1/0/-) DETAIL
        local v
        case $2 in 1) v=PASS ;; 0) v=MISS ;; *) v="n/a" ;; esac
        echo "- $v: $1 — $3"
    }
    if [ -n "${SECS[b]:-}" ] && [ -n "${SECS[a]:-}" ]; then
        r=$(ratio b a)
        okb=$(awk -v r="$r" 'BEGIN { print (r <= 0.6) ? 1 : 0 }')
        [ "${STATUS[b]}" = ok ] && [ "${STATUS[a]}" = ok ] || okb=0
        check "docker-archive .tar.gz through hoist ≤ 0.6× skopeo (plain tar)" "$okb" "$r×"
    else check "docker-archive .tar.gz through hoist ≤ 0.6× skopeo" - "cases a/b not run"; fi
    if [ -n "${SECS[d]:-}" ] && [ -n "${SECS[e]:-}" ]; then
        r=$(ratio d e)
        okd=$(awk -v r="$r" 'BEGIN { print (r <= 1.15) ? 1 : 0 }')
        [ "${STATUS[d]}" = ok ] && [ "${STATUS[e]}" = ok ] || okd=0
        check "oci-archive .tar.gz through hoist ≤ 1.15× registry ingest" "$okd" "$r×"
    else check "oci-archive .tar.gz ≤ 1.15× registry ingest" - "cases d/e not run"; fi
    peak=0
    for c in b c d s; do
        [ -n "${RSS[$c]:-}" ] && peak=$(awk -v a="$peak" -v b="${RSS[$c]}" 'BEGIN { print (b > a) ? b : a }')
    done
    if [ -n "${RSS[s]:-}" ] && [ -n "${RSS[b]:-}" ]; then
        okr=$(awk -v p="$peak" -v s="${RSS[s]}" -v b="${RSS[b]}" \
            'BEGIN { print (p <= 64 && b <= s + 8) ? 1 : 0 }')
        check "hoist peak RSS ≤ 64 MiB and not growing with archive size" "$okr" \
            "max over hoist cases ${peak} MiB; img.tar.gz ${RSS[b]} MiB vs small.tar.gz (1/$BENCH_LAYERS size) ${RSS[s]} MiB (growth allowed: 8 MiB)"
    else check "hoist peak RSS ≤ 64 MiB, not growing" - "cases b/s not run"; fi
} >"$md"

echo
cat "$md"
echo
say "written $md; per-case logs in $runs"
