"""`meshward serve --strict`: flagged errors (analyzer findings about configs Pilot serves) block a commit as
rejected ones do; without it the commit is served with the finding reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshward import cli
from reconciler import compose, serve

# a route to a host no Service or ServiceEntry defines: IST0101 for istioctl analyze, a 503 route for Pilot
TREE = """apiVersion: v1
kind: Service
metadata: {name: r, namespace: shop}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: shop}
spec:
  hosts: [r]
  http:
  - route:
    - destination: {host: gone}
"""


@pytest.mark.parametrize(("flags", "served"), [((), True), (("--strict",), False)])
def test_strict_flag_blocks_flagged_errors(flags: tuple[str, ...], served: bool, tmp_path: Path) -> None:
    config = serve.config_from_args(cli._parser().parse_args(["serve", "--repo", "r", *flags]))
    (tmp_path / "mesh.yaml").write_text(TREE)
    compiler = compose.Compiler(strict=config.strict)
    compiled = compiler.build(compiler.load(tmp_path), None)
    assert compiled.ok is served
    assert [d.code for d in compiled.diagnostics if d.flagged] == ["MW0302"]
