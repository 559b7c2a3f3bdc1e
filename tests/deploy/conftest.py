"""Fixtures of the deploy/ tests. The loopback API server of tests/k8s is shared, not copied."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "k8s"))
