"""The layering is enforced by import-linter (contracts in pyproject.toml): the compiler never imports the
reconciler, grpc, git or kubernetes; the reconciler sees the compiler only through compiler.build; meshxds (the xDS
resources and snapshots both share) imports neither; none imports the command line (meshward); the model no
protobuf or YAML; the emitter only the model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    tool = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(tool).exists():
        pytest.skip("import-linter is not installed")
    result = subprocess.run([tool, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
