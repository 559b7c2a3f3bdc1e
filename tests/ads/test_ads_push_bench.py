"""Smoke test: the push benchmark runs end to end at a tiny size (a real server process, client processes, one
commit). Its figures are not asserted; only that every affected proxy ACKed the change and the report is complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "push.py"


@pytest.mark.slow
def test_push_bench_runs_end_to_end_at_a_tiny_size() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--services", "20", "--proxies", "4"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for phrase in ("full compile", "4 proxies connected and in sync", "-> 4 affected proxies; last ACK",
                   "detect", "bytes pushed, SotW", "bytes pushed, delta", "serialize: our encode CPU"):
        assert phrase in out, out
