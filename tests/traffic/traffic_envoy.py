"""Compile a policy tree to a static bootstrap and run the real Envoy on it, for the traffic tests.

Everything is bounded: readiness is polled with a deadline, and the process is always terminated (then killed).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from compiler import build
from compiler.emit import bootstrap_static
from reconciler.ops import envoy_process

free_port = envoy_process.free_port


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def compile_bootstrap(tree: Path, node_id: str, out: Path, admin_port: int,
                      inputs: build.BuildInputs | None = None) -> Path:
    """The tree must compile cleanly (no error diagnostics); the failure message lists them."""
    result = build.build([tree], inputs=inputs)
    errors = build.errors(result)
    assert result.ok and not errors, "\n".join(str(d) for d in result.diagnostics)
    cfg = build.proxy_config(result, node_id)
    out.write_text(json.dumps(bootstrap_static.static_bootstrap(cfg, admin_port=admin_port), indent=1))
    return out


@contextmanager
def envoy(
    envoy_bin: str,
    bootstrap: Path,
    admin_port: int,
    listeners: list[tuple[str, int]],
    deadline_s: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run Envoy until the admin says ready and every listener accepts connections; stop it afterwards."""
    with envoy_process.running(bootstrap, log=bootstrap.with_suffix(".log"), envoy_bin=envoy_bin,
                               extra_args=("--disable-hot-restart",)) as proc:
        try:
            proc.wait_ready(admin_port, deadline_s=deadline_s,
                            also=lambda: all(envoy_process.port_open(a, p) for a, p in listeners))
        except envoy_process.EnvoyError as err:
            raise AssertionError(str(err)) from None
        yield proc.proc
