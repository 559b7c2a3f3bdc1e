"""deploy/ as a cluster would receive it: the output of the real `kubectl kustomize deploy/` (offline), parsed, and
the Deployment's `meshward serve` flags."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in YAML(typ="safe").load_all(text) if doc]


@functools.cache
def _rendered() -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:  # CI installs it (.ci/run): kustomize's own reading of deploy/ is what is tested
        pytest.fail("kubectl is not installed: apt-get install kubectl")
    out = subprocess.run([kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60, check=True)
    return tuple(load_all(out.stdout))


def rendered() -> list[dict[str, Any]]:
    return list(_rendered())


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in _rendered() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/, found {len(found)}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    return dict(one("Deployment")["spec"]["template"]["spec"])


def container(name: str = "meshward") -> dict[str, Any]:
    return next(c for c in pod_spec()["containers"] if c["name"] == name)


def serve_args() -> list[str]:
    """The Deployment's arguments to the image's entrypoint, `meshward serve`."""
    return list(container()["args"])


def flag(args: list[str], name: str) -> str | None:
    """The value of `--name=value` in `args` (the form deploy/ writes), or None."""
    values = [a.partition("=")[2] for a in args if a.partition("=")[0] == name]
    return values[-1] if values else None
