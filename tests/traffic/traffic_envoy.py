"""Compile a policy tree to a static bootstrap and run the real Envoy on it, for the traffic tests.

Everything is bounded: readiness is polled with a deadline, and the process is always terminated (then killed).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from compiler import build
from compiler.emit import bootstrap_static


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def compile_bootstrap(tree: Path, node_id: str, out: Path, admin_port: int) -> Path:
    """The tree must compile cleanly (no error diagnostics); the failure message lists them."""
    result = build.build([tree])
    errors = build.errors(result)
    assert result.ok and not errors, "\n".join(str(d) for d in result.diagnostics)
    cfg = build.proxy_config(result, node_id)
    out.write_text(json.dumps(bootstrap_static.static_bootstrap(cfg, admin_port=admin_port), indent=1))
    return out


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _ready(admin_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@contextmanager
def envoy(
    envoy_bin: str,
    bootstrap: Path,
    admin_port: int,
    listeners: list[tuple[str, int]],
    deadline_s: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run Envoy until the admin says ready and every listener accepts connections; stop it afterwards."""
    log = bootstrap.with_suffix(".log")
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                envoy_bin,
                "-c",
                str(bootstrap),
                "--log-level",
                "warn",
                "--use-dynamic-base-id",
                "--disable-hot-restart",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        end = time.monotonic() + deadline_s
        while not (_ready(admin_port) and all(_port_open(a, p) for a, p in listeners)):
            if proc.poll() is not None:
                raise AssertionError(f"envoy exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            if time.monotonic() > end:
                raise AssertionError(f"envoy not ready within {deadline_s}s:\n{log.read_text()[-4000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
