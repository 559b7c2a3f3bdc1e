"""After a revert of a large commit, the reconciler's builds leave nothing of it in emit's process-wide memos
(`compiler.emit.release_process_memos`): they held most of the memory such a commit took (README, Limitations)."""

from __future__ import annotations

import shutil
from pathlib import Path

from compiler import build
from compiler.emit import endpoint, metadata
from reconciler import compose

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "router~127.0.0.10~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
ENTRY = """---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ext-{i}, namespace: bookinfo}}
spec:
  hosts: [ext-{i}.example.com]
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  resolution: STATIC
  endpoints: [{{address: 10.9.{hi}.{lo}}}]
"""


def _tree(tmp: Path, name: str, entries: int) -> Path:
    tree = tmp / name
    shutil.copytree(ROOT / "policies-example", tree)
    (tree / "many.yaml").write_text("".join(ENTRY.format(i=i, hi=i // 250, lo=i % 250 + 1) for i in range(entries)))
    return tree


def _memo_entries() -> int:
    return metadata._cached.cache_info().currsize + endpoint.lb_endpoint.cache_info().currsize


def test_a_reverted_commit_leaves_nothing_in_emits_memos(tmp_path: Path) -> None:
    compiler = compose.Compiler()
    for name, entries in (("large", 500), ("reverted", 0)):
        compiled = compiler.build(compiler.load(_tree(tmp_path, name, entries)), None)
        build.snapshot_for(compiled.build, GATEWAY)
        if name == "large":
            assert _memo_entries() > 500  # the gateway's clusters of the entries, each with its source
    assert _memo_entries() < 100
