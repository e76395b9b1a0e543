"""The benchmark's servers and process helpers: a fresh docker-registry (and hoist) per case,
a quiet machine before each timing, the pushed tag read back. Used by bench/run.py."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def say(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"{what} exited (status {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on {port}")


def proc_status(pid, field):
    """A VmRSS/VmHWM line of /proc/PID/status, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


class Servers:
    """A fresh registry (storage in a temporary directory) and, unless `hoist` is None, a
    fresh hoist in front of it."""

    def __init__(self, hoist):
        self.dir = tempfile.mkdtemp(prefix="hoist-bench-")
        self.registry_port = free_port()
        config = os.path.join(self.dir, "registry.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/storage\n"
                    f"http:\n  addr: 127.0.0.1:{self.registry_port}\n  secret: bench\n")
        self.registry = subprocess.Popen(["docker-registry", "serve", config],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.registry_port, self.registry, "docker-registry")
        self.registry_url = f"http://127.0.0.1:{self.registry_port}"
        self.hoist = None
        if hoist:
            self.port = free_port()
            self.hoist = subprocess.Popen(
                [hoist, "serve", "--listen", f"127.0.0.1:{self.port}", "--registry", self.registry_url],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "hoist.log"), "w"))
            wait_port(self.port, self.hoist, "hoist")

    def push(self, path, target, query=""):
        """curl -T, as a user would; returns the report, or exits on a failure."""
        url = f"http://127.0.0.1:{self.port}/push/{target}{query}"
        out = subprocess.run(["curl", "-sS", "-T", path, "-w", "\n%{http_code}", url],
                             capture_output=True, text=True)
        body, _, status = out.stdout.rpartition("\n")
        if status != "201":
            sys.exit(f"push of {path} to {target}: {status} {body[:400]} {out.stderr}")
        return json.loads(body)

    def peak_rss(self):
        return proc_status(self.hoist.pid, "VmHWM")

    def close(self):
        for p in (self.hoist, self.registry):
            if p:
                p.terminate()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def busy_seconds():
    """CPU seconds the whole machine has been busy since boot (all cores)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")


def settle(*paths, patience=60):
    """Page cache warm, dirty pages written, and (on a shared machine) a 2 s window in which
    others use under a quarter of a core, waited for at most `patience` seconds."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass
    os.sync()
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        before = busy_seconds()
        time.sleep(2)
        if (busy_seconds() - before) / 2 < 0.25:
            return
    say("the machine is still busy; measuring anyway")


def check_tag(registry_port, target):
    """The pushed tag reads back with skopeo, or the run stops."""
    run("skopeo", "inspect", "--raw", "--tls-verify=false",
        f"docker://127.0.0.1:{registry_port}/{target}", stdout=subprocess.DEVNULL)
