"""An output that cannot be written is exit 2 with one line on stderr, never a traceback (DESIGN.md's exit codes;
issue 13). Run as the console script is, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = "sidecar~127.0.0.11~productpage-v1.bookinfo~bookinfo.svc.cluster.local"


def _meshward(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshward", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize(("target", "flags", "says"), [
    ("missing/dir/x.json", ["--node", NODE], "No such file or directory"),
    ("file.json/x.json", ["--node", NODE], "Not a directory"),
    ("file.json", ["--all"], "not a directory"),
    ("file.json/sub", ["--all"], "Not a directory"),
])
def test_unwritable_output_is_one_line_and_exit_2(tmp_path: Path, target: str, flags: list[str], says: str) -> None:
    (tmp_path / "file.json").write_text("{}")
    proc = _meshward("compile", "policies-example", *flags, "-o", str(tmp_path / target))
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"meshward compile: {tmp_path / target}: {says}")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device every write to fails)")
def test_a_failed_write_names_the_file() -> None:
    proc = _meshward("compile", "policies-example", "--node", NODE, "-o", "/dev/full")
    assert (proc.returncode, proc.stderr) == (2, "meshward compile: /dev/full: No space left on device\n")


@pytest.mark.parametrize("args", [["validate", "--list-codes"], ["messages"], ["fields"]])
def test_a_reader_that_left_ends_quietly(args: list[str]) -> None:
    """`meshward validate --list-codes | head`: once the reader closes the pipe, meshward stops with 128 + SIGPIPE
    as the shell's own tools do, and says nothing on stderr (no "Broken pipe", no traceback)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        proc = subprocess.run([sys.executable, "-m", "meshward", *args], cwd=ROOT, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, "")
