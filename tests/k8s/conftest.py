"""Shared fixtures of the Kubernetes tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_apiserver import FakeApiServer


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    """A fake Kubernetes API server on 127.0.0.1, stopped after the test."""
    srv = FakeApiServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
