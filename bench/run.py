#!/usr/bin/env python3
"""End-to-end push benchmark: hoist against skopeo and against the registry's own ingest.

Builds once (cached in DIR/fixtures) an image of about --size-mb MB from real files on this
machine, in --layers layers, written by skopeo as a docker-archive (plain and gzipped) and an
oci-archive (gzipped). Then runs each case against a FRESH docker-registry on loopback and
prints one table, ratios taken against baselines measured in the same run:

  skopeo       skopeo copy docker-archive:img.tar                    baseline A
  docker-gz    hoist, img.tar.gz (docker-archive), layers gzipped    vs A
  docker-plain hoist, img.tar                                        vs A
  docker-zstd  hoist, img.tar.gz, ?layer_compression=zstd            vs A
  ingest       the registry's own ingest of the OCI blobs (one PATCH each)   baseline E
  oci-gz       hoist, oci.tar.gz                                     vs E
  repush       hoist, img.tar.gz again, every blob already there     vs docker-gz
  repush-digest  the same, both pushes naming ?digest= (the second is replayed)  vs docker-gz
  sequential4  4 pushes of oci.tar.gz one after another (each to a fresh registry)
  concurrent4  4 pushes at once, to 4 repositories of one registry   vs sequential4
  rss8         8 concurrent pushes of small.tar.gz: peak RSS, and RSS 60 s after

Peak RSS is hoist's VmHWM: each case starts a fresh hoist. A MISS is reported, not an error.

    bench/run.py                       # all cases, 1 round
    bench/run.py --rounds 3 docker-gz skopeo   # medians of 3, two cases
"""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from fixtures import build_fixtures
from harness import Servers, check_tag, proc_status, run, say, settle


# ------------------------------------------------------------------------------ cases

def timed(f):
    start = time.monotonic()
    result = f()
    return time.monotonic() - start, result


def hoist_case(args, archive, query="", repush=False):
    servers = Servers(args.hoist)
    try:
        path = os.path.join(args.fx, archive)
        if repush:
            servers.push(path, "bench/app:first", query)
        settle(path)
        secs, report = timed(lambda: servers.push(path, "bench/app:v1", query))
        check_tag(servers.registry_port, "bench/app:v1")
        note = f"{report['bytes_sent'] / 1e6:.0f} MB sent; blobs {outcomes([report])}"
        if report.get("replayed"):
            note += "; replayed"
        return {"secs": secs, "rss": servers.peak_rss(), "note": note}
    finally:
        servers.close()


def digest_query(args, archive):
    """?digest= with the archive's sha256 (computed here, not timed)."""
    h = hashlib.sha256()
    with open(os.path.join(args.fx, archive), "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f"?digest=sha256:{h.hexdigest()}"


def case_skopeo(args):
    servers = Servers(None)
    try:
        path = os.path.join(args.fx, "img.tar")
        settle(path)
        dest = f"docker://127.0.0.1:{servers.registry_port}/bench/skopeo:v1"
        secs, _ = timed(lambda: run("skopeo", "--insecure-policy", "copy", "-q",
                                    "--dest-tls-verify=false", f"docker-archive:{path}", dest))
        check_tag(servers.registry_port, "bench/skopeo:v1")
        return {"secs": secs, "rss": None, "note": ""}
    finally:
        servers.close()


def layout_image(fx, tag):
    layout = os.path.join(fx, "oci-layout")
    index = json.load(open(os.path.join(layout, "index.json")))
    desc = next(m for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    blob = lambda d: os.path.join(layout, "blobs", "sha256", d.split(":")[1])
    manifest = json.load(open(blob(desc["digest"])))
    blobs = [l["digest"] for l in manifest["layers"]] + [manifest["config"]["digest"]]
    return [(d, blob(d)) for d in blobs], (desc["mediaType"], blob(desc["digest"]))


def ingest_blob(conn, digest, path):
    """POST, one PATCH with the whole blob, PUT ?digest=: the registry's own fastest path."""
    conn.request("POST", "/v2/bench/raw/blobs/uploads/", headers={"Content-Length": "0"})
    r = conn.getresponse(); r.read()
    location = urllib.parse.urlsplit(r.getheader("Location"))
    with open(path, "rb") as f:
        conn.request("PATCH", f"{location.path}?{location.query}", body=f, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(os.path.getsize(path))})
        r = conn.getresponse(); r.read()
    location = urllib.parse.urlsplit(r.getheader("Location"))
    sep = "&" if location.query else ""
    conn.request("PUT", f"{location.path}?{location.query}{sep}digest={digest}",
                 headers={"Content-Length": "0"})
    r = conn.getresponse(); r.read()
    if r.status != 201:
        sys.exit(f"ingest of {digest}: {r.status}")


def case_ingest(args):
    servers = Servers(None)
    try:
        blobs, (media_type, manifest) = layout_image(args.fx, "v1")
        settle(*[p for _, p in blobs], manifest)

        def ingest():
            conn = http.client.HTTPConnection("127.0.0.1", servers.registry_port, blocksize=1 << 20)
            for digest, path in blobs:
                ingest_blob(conn, digest, path)
            conn.request("PUT", "/v2/bench/raw/manifests/v1", body=open(manifest, "rb").read(),
                         headers={"Content-Type": media_type})
            r = conn.getresponse(); r.read()
            if r.status != 201:
                sys.exit(f"manifest PUT: {r.status}")

        secs, _ = timed(ingest)
        check_tag(servers.registry_port, "bench/raw:v1")
        return {"secs": secs, "rss": None, "note": f"{len(blobs)} blobs, one PATCH each"}
    finally:
        servers.close()


def outcomes(reports):
    found = [b["outcome"] for r in reports for i in r["images"] for b in i["blobs"]]
    return ", ".join(f"{found.count(o)} {o}" for o in sorted(set(found)))


def sequential(args, archive, n):
    """n pushes one after another, each to a fresh registry: nothing to mount, as at once."""
    total, reports, peak = 0.0, [], 0.0
    for _ in range(n):
        servers = Servers(args.hoist)
        try:
            path = os.path.join(args.fx, archive)
            settle(path)
            secs, report = timed(lambda: servers.push(path, "bench/app:v1"))
            total, peak = total + secs, max(peak, servers.peak_rss())
            reports.append(report)
        finally:
            servers.close()
    return {"secs": total, "rss": peak, "note": f"{n} × {archive}; blobs {outcomes(reports)}"}


def at_once(args, archive, n):
    """n pushes of one archive at once, to n repositories of one fresh registry."""
    servers = Servers(args.hoist)
    try:
        path = os.path.join(args.fx, archive)
        settle(path)
        with ThreadPoolExecutor(n) as pool:
            push = lambda i: servers.push(path, f"bench/app{i}:v1")
            secs, reports = timed(lambda: list(pool.map(push, range(n))))
        note = f"{n} × {archive}; blobs {outcomes(reports)}"
        result = {"secs": secs, "rss": servers.peak_rss(), "note": note}
        if archive == "small.tar.gz" and args.rss_wait:
            time.sleep(args.rss_wait)
            after = proc_status(servers.hoist.pid, "VmRSS")
            result["note"] += f"; RSS {after:.0f} MiB {args.rss_wait:.0f} s after"
        return result
    finally:
        servers.close()


CASES = {
    "skopeo": ("skopeo copy docker-archive img.tar (baseline A)", case_skopeo, None),
    "docker-gz": ("hoist, docker-archive img.tar.gz", lambda a: hoist_case(a, "img.tar.gz"), "skopeo"),
    "docker-plain": ("hoist, docker-archive img.tar", lambda a: hoist_case(a, "img.tar"), "skopeo"),
    "docker-zstd": ("hoist, img.tar.gz, zstd layers",
                    lambda a: hoist_case(a, "img.tar.gz", "?layer_compression=zstd"), "skopeo"),
    "ingest": ("registry's own ingest of the OCI blobs (baseline E)", case_ingest, None),
    "oci-gz": ("hoist, oci-archive oci.tar.gz", lambda a: hoist_case(a, "oci.tar.gz"), "ingest"),
    "repush": ("hoist, img.tar.gz again (all blobs there)",
               lambda a: hoist_case(a, "img.tar.gz", repush=True), "docker-gz"),
    "repush-digest": ("hoist, img.tar.gz again, ?digest= named (replayed)",
                      lambda a: hoist_case(a, "img.tar.gz", digest_query(a, "img.tar.gz"), repush=True),
                      "docker-gz"),
    "sequential4": ("hoist, 4 × oci.tar.gz one after another", lambda a: sequential(a, "oci.tar.gz", 4), None),
    "concurrent4": ("hoist, 4 × oci.tar.gz at once", lambda a: at_once(a, "oci.tar.gz", 4), "sequential4"),
    "rss8": ("hoist, 8 × small.tar.gz at once", lambda a: at_once(a, "small.tar.gz", 8), None),
}


def table(results, rounds):
    median = {k: statistics.median(r["secs"] for r in rs) for k, rs in results.items()}
    print(f"\n| case | seconds (median of {rounds}) | ratio | hoist peak RSS | |")
    print("|---|--:|---|--:|---|")
    for key, rs in results.items():
        desc, _, base = CASES[key]
        ratio = f"{median[key] / median[base]:.2f} × {base}" if base in median else "–"
        rss = max((r["rss"] for r in rs if r["rss"]), default=None)
        rss = f"{rss:.1f} MiB" if rss else "–"
        print(f"| {key}: {desc} | {median[key]:.2f} | {ratio} | {rss} | {rs[-1]['note']} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="*", default=list(CASES), help="cases to run (default: all)")
    p.add_argument("--dir", default="/tmp/hoist-bench")
    p.add_argument("--size-mb", type=int, default=1100)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--rss-wait", type=float, default=60, help="seconds before the RSS after rss8")
    p.add_argument("--hoist", default=os.path.join(ROOT, "target/release/hoist"))
    p.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    p.add_argument("--fixtures-only", action="store_true", help="build the fixtures and stop")
    args = p.parse_args()
    for tool in ["docker-registry", "skopeo", "umoci", "pigz", "curl", "tar"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install docker-registry skopeo umoci pigz curl tar)")
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        sys.exit(f"unknown cases {unknown}; known: {list(CASES)}")
    if not args.no_build:
        run("cargo", "build", "--release", "--quiet", cwd=ROOT)
    args.fx = os.path.join(args.dir, "fixtures")
    build_fixtures(args.fx, args.size_mb, args.layers)
    if args.fixtures_only:
        return
    for f in ["img.tar", "img.tar.gz", "oci.tar.gz", "small.tar.gz"]:
        say(f"{f}: {os.path.getsize(os.path.join(args.fx, f)) / 1e6:.1f} MB")
    results = {}
    for _ in range(args.rounds):
        for key in args.cases:
            r = CASES[key][1](args)
            say(f"{key}: {r['secs']:.2f} s {r['note']}")
            results.setdefault(key, []).append(r)
    table(results, args.rounds)


if __name__ == "__main__":
    main()
