"""`meshward serve` run as a real process with the Deployment's own flags, on loopback: the repository becomes a
local one, the cluster the loopback API server, the CA directory a complete one (as the Secret holds it), and every
`--*-address` the same port number's free stand-in on 127.0.0.1 (network tests choose free ports at run time)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from reconciler.identity import ca, tokens
from reconciler.ops import envoy_process


def kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: '{url}'}}}}]\n"
        "users: [{name: nobody, user: {}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: nobody}}]\n")
    return path


def complete_ca_dir(path: Path) -> Path:
    """What the meshward-cacerts Secret holds: Istio's cacerts files and the token key."""
    ca.load_or_create(path)
    tokens.load_or_create_key(path)
    return path


def local_args(args: list[str], *, replace: dict[str, str], ports: dict[int, int]) -> list[str]:
    """`args` (`--name=value`) with the values of `replace` and every address moved to 127.0.0.1:ports[port]."""
    out = []
    for arg in args:
        name, eq, value = arg.partition("=")
        if name in replace:
            value = replace[name]
        elif name.endswith("-address"):
            value = f"127.0.0.1:{ports[int(value.rpartition(':')[2])]}"
        out.append(f"{name}{eq}{value}")
    return out


def free_ports(numbers: list[int]) -> dict[int, int]:
    return {number: envoy_process.free_port() for number in numbers}


@contextlib.contextmanager
def running(args: list[str], *, tmp: Path, ready_at: str) -> Iterator[subprocess.Popen[str]]:
    """`meshward serve ARGS` with TMPDIR=tmp, until `ready_at`/readyz answers 200; killed on exit."""
    proc = subprocess.Popen([sys.executable, "-m", "meshward", "serve", *args],
                            env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _until_ready(proc, ready_at)
        yield proc
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def _until_ready(proc: subprocess.Popen[str], admin: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.communicate()[0]}")
        try:
            with urllib.request.urlopen(f"http://{admin}/readyz", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise AssertionError("serve never became ready")


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on (Linux: its socket fds matched in /proc/PID/net/tcp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: TCP_LISTEN
                ports.add(int(fields[1].rpartition(":")[2], 16))
    return ports
