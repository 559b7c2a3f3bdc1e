"""Fixtures of the GitOps tests; the helpers live in `gitops_repos` (a unique module name, importable by tests)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitops_repos import Remote


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    yield Remote(tmp_path / "remote")
    shutil.rmtree(tmp_path / "remote", ignore_errors=True)
