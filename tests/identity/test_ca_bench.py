"""Smoke test: the CA benchmark runs end to end at a tiny size (a real `meshward serve`, two in-process agents with
their SDS protocol clients, one real Envoy with its own `meshward agent`). Its figures are not asserted; only that
every SDS stream ACKed, the Envoy came to hold both secrets, and the report is complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ca.py"

pytestmark = [pytest.mark.slow, pytest.mark.envoy]


def test_ca_bench_runs_end_to_end_at_a_tiny_size(envoy_bin: str) -> None:
    args = ["--sign", "10", "--agents", "2", "--envoys", "1", "--deadline", "60"]
    # Its own session, so that a run past the timeout takes its `meshward serve`, agents and Envoy down with it.
    bench = subprocess.Popen([sys.executable, str(BENCH), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        out, err = bench.communicate(timeout=120)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.communicate()
    assert bench.returncode == 0, out + err
    for phrase in ("sign     10 certificates", "agents   2 agents", "sds      4 of 4 SDS streams",
                   "NACKed or failed: none", "envoys   1 real Envoys", "holds default and ROOTCA",
                   "to its Envoy accepting both secrets: median"):
        assert phrase in out, out
