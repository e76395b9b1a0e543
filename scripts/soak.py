#!/usr/bin/env python3
"""Soak test (not in CI): N concurrent clients push good and hostile archives to one hoist
for M minutes, against a real registry (Debian's docker-registry), on loopback only.

Prints pushes done, answers by status and code, hoist's RSS over time, and the registry's
upload sessions left open. Fails (exit 1) when an answer is not the one its case expects,
when a session is left open, or when RSS grows: the last sample may exceed the first sample
after warm-up by at most --growth-mib.

    scripts/soak.sh --clients 8 --minutes 10
"""
import argparse, gzip, hashlib, http.client, io, json, os, random, shutil, socket
import subprocess, sys, tarfile, tempfile, threading, time
from collections import Counter


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def tar_of(files):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def oci_archive(layer_bytes, seed):
    """A one-layer OCI layout; returns (files, layer digest)."""
    layer = tar_of([(f"data/{seed}", layer_bytes)])
    gz = gzip.compress(layer, 1, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(gz), "size": len(gz)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(manifest), "size": len(manifest)}]}).encode()
    blob = lambda b: ("blobs/sha256/" + hashlib.sha256(b).hexdigest(), b)
    return [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
            blob(manifest), blob(config), blob(gz)], sha(gz)


def cases(size):
    """name -> (body builder, expected status, expected code or None)."""
    def good():
        files, _ = oci_archive(os.urandom(size // 2) + bytes(size // 2), random.random())
        return gzip.compress(tar_of(files), 1)
    def bad_digest():
        files, layer = oci_archive(os.urandom(4096), random.random())
        files = [(n, b"junk" * 1024 if n.endswith(layer.split(":")[1]) else d) for n, d in files]
        return tar_of(files)
    def truncated():
        return good()[:-4096]
    def long_name():
        h = tarfile.TarInfo("././@LongLink")
        h.type, h.size = tarfile.GNUTYPE_LONGNAME, 1 << 30
        return h.tobuf(tarfile.GNU_FORMAT) + b"a" * 65536
    def garbage():
        return os.urandom(8192)
    def bomb():
        return gzip.compress(bytes(64 << 20), 9)
    return {
        "good": (good, 201, None),
        "bad_digest": (bad_digest, 400, "DIGEST_MISMATCH"),
        "truncated": (truncated, 400, "ARCHIVE_INVALID"),
        "long_name": (long_name, 400, "ENTRY_HEADER_INVALID"),
        "garbage": (garbage, 415, "UNSUPPORTED_FORMAT"),
        "bomb": (bomb, 413, "DECOMPRESSED_TOO_LARGE"),
    }


def push(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream"})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    try:
        code = json.loads(data).get("error", {}).get("code")
    except ValueError:
        code = "NOT_JSON"
    return r.status, code


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_sessions(root):
    """Upload sessions still open: distribution keeps `data` and `startedat` under
    `<repo>/_uploads/<id>/` until the session is committed or cancelled; a cancelled one
    keeps at most `hashstates/` (written back by the DELETE handler's own close)."""
    uploads = 0
    for dirpath, dirnames, _ in os.walk(root):
        if os.path.basename(dirpath) == "_uploads":
            for d in dirnames:
                left = os.listdir(os.path.join(dirpath, d))
                uploads += any(name in left for name in ("data", "startedat"))
    return uploads


def start(args, work):
    reg_port, hoist_port = free_port(), free_port()
    storage = os.path.join(work, "storage")
    cfg = os.path.join(work, "registry.yml")
    with open(cfg, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
                f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{reg_port}\n  secret: soak\n")
    registry = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(work, "registry.log"), "w"))
    env = dict(os.environ, HOIST_LIMITS__DECOMPRESSED_BYTES=str(32 << 20))
    hoist = subprocess.Popen([args.hoist, "serve", "--listen", f"127.0.0.1:{hoist_port}",
                              "--registry", f"http://127.0.0.1:{reg_port}"],
                             env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "hoist.log"), "w"))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", hoist_port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return registry, hoist, hoist_port, storage


def client(port, table, deadline, stats, failures, lock):
    n = 0
    while time.time() < deadline:
        name = random.choice(["good", "good", "good"] + [k for k in table if k != "good"])
        build, status, code = table[name]
        try:
            got = push(port, f"/push/soak/{name}:{threading.get_ident() % 1000}-{n}", build())
        except OSError as e:
            got = (0, type(e).__name__)
        n += 1
        with lock:
            stats[(name,) + got] += 1
            if got != (status, code):
                failures.append((name, got, (status, code)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hoist", default="target/release/hoist")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--size-mib", type=float, default=4, help="layer size of a good push")
    p.add_argument("--warmup-s", type=float, default=60)
    p.add_argument("--growth-mib", type=float, default=48)
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="hoist-soak-")
    registry, hoist, port, storage = start(args, work)
    table, stats, failures, lock = cases(int(args.size_mib * (1 << 20))), Counter(), [], threading.Lock()
    deadline = time.time() + args.minutes * 60
    threads = [threading.Thread(target=client, args=(port, table, deadline, stats, failures, lock), daemon=True)
               for _ in range(args.clients)]
    begin = time.time()
    for t in threads:
        t.start()
    samples = []
    while any(t.is_alive() for t in threads):
        samples.append((time.time() - begin, rss_mib(hoist.pid)))
        print(f"{samples[-1][0]:7.0f} s  RSS {samples[-1][1]:6.1f} MiB  pushes {sum(stats.values())}", flush=True)
        time.sleep(10)
    for t in threads:
        t.join()
    time.sleep(3)  # sessions of the last failed pushes are cancelled in the background
    end_rss, sessions = rss_mib(hoist.pid), open_sessions(storage)
    hoist.terminate(); registry.terminate()
    warm = next((r for t, r in samples if t >= args.warmup_s), samples[-1][1])
    print(f"\npushes {sum(stats.values())} in {args.minutes} min with {args.clients} clients")
    for (name, status, code), n in sorted(stats.items(), key=lambda x: -x[1]):
        print(f"  {n:7d}  {name:11s} {status} {code or ''}")
    print(f"RSS: start {samples[0][1]:.1f} MiB, after warm-up {warm:.1f}, end {end_rss:.1f}, "
          f"max {max(r for _, r in samples):.1f}; open upload sessions: {sessions}")
    ok = not failures and sessions == 0 and end_rss <= warm + args.growth_mib
    for f in failures[:10]:
        print("unexpected:", f)
    print("PASS" if ok else "FAIL")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
