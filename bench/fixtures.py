"""The benchmark's fixtures, built once and cached: real files from this machine in N layers
(umoci), written by skopeo as docker-archive (plain, .tar.gz) and oci-archive (.tar.gz), plus a
one-layer image. Used by bench/run.py."""
import os
import shutil
import subprocess
import sys

from harness import run, say

SOURCES = ["/usr/lib/x86_64-linux-gnu", "/usr/share", "/usr/lib/jvm", "/usr/lib"]
FIXTURE_VERSION = 4


def pick_files(target):
    """Real files, in a fixed order, each inode once, until `target` bytes."""
    seen, picked, total = set(), [], 0
    for root in SOURCES:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if not os.path.isfile(path) or os.path.islink(path) or st.st_size == 0:
                    continue
                if (st.st_dev, st.st_ino) in seen or not os.access(path, os.R_OK):
                    continue
                seen.add((st.st_dev, st.st_ino))
                picked.append((path, st.st_size))
                total += st.st_size
                if total >= target:
                    return picked
    sys.exit(f"only {total} bytes of files found, fewer than {target}")


def split_layers(picked, n):
    total = sum(s for _, s in picked)
    layers, current, size = [], [], 0
    for path, s in picked:
        if size >= total / n and len(layers) < n - 1:
            layers.append(current)
            current, size = [], 0
        current.append(path)
        size += s
    return layers + [current]


def build_fixtures(fx, size_mb, n_layers):
    stamp = f"size_mb={size_mb} layers={n_layers} version={FIXTURE_VERSION}"
    names = ["img.tar", "img.tar.gz", "oci.tar.gz", "small.tar.gz"]
    stamp_file = os.path.join(fx, "stamp")
    if os.path.exists(stamp_file) and open(stamp_file).read() == stamp and all(
        os.path.exists(os.path.join(fx, f)) for f in names
    ):
        say(f"fixtures cached in {fx} ({stamp})")
        return
    say(f"building fixtures in {fx} ({stamp}); not timed")
    shutil.rmtree(fx, ignore_errors=True)
    layout = os.path.join(fx, "oci-layout")
    os.makedirs(fx)
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", f"{layout}:v1")
    for i, files in enumerate(split_layers(pick_files(size_mb * 10**6), n_layers)):
        rootfs = os.path.join(fx, "rootfs")
        shutil.rmtree(rootfs, ignore_errors=True)
        os.makedirs(rootfs)
        listing = "\0".join(p.lstrip("/") for p in files).encode()
        pack = subprocess.Popen(["tar", "-C", "/", "--null", "-T", "-", "-cf", "-"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        unpack = subprocess.Popen(["tar", "-C", rootfs, "-xf", "-"], stdin=pack.stdout)
        pack.stdin.write(listing)
        pack.stdin.close()
        unpack.wait()
        pack.wait()
        run("umoci", "insert", "--image", f"{layout}:v1", rootfs, f"/data/{i}")
        if i == 0:
            run("umoci", "tag", "--image", f"{layout}:v1", "small")
    shutil.rmtree(os.path.join(fx, "rootfs"), ignore_errors=True)
    copy = ["skopeo", "--insecure-policy", "copy", "-q"]
    run(*copy, f"oci:{layout}:v1", f"docker-archive:{fx}/img.tar:bench/app:v1")
    run(*copy, f"oci:{layout}:small", f"docker-archive:{fx}/small.tar:bench/app:small")
    run(*copy, f"oci:{layout}:v1", f"oci-archive:{fx}/oci.tar:v1")
    run("pigz", "-6", "-k", "-f", f"{fx}/img.tar")
    run("pigz", "-6", "-f", f"{fx}/small.tar", f"{fx}/oci.tar")
    open(stamp_file, "w").write(stamp)
