"""SDS secrets the tree only names (Gateway `credentialName`) come from the reconciler's credentials: the build adds
those a proxy refers to, and without them the snapshot is refused as inconsistent rather than served warming."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler import build, model
from meshxds import type_urls

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "router~127.0.0.10~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
HTTPS_SERVER = """
  - port: {number: 8443, name: https, protocol: HTTPS}
    bind: 127.0.0.10
    hosts: [bookinfo.example.com]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
"""


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "policies-example", tmp_path / "p")
    gateway = tmp_path / "p" / "bookinfo" / "gateway.yaml"
    gateway.write_text(gateway.read_text().rstrip("\n") + HTTPS_SERVER)
    return tmp_path / "p"


def test_referenced_secret_is_added_and_unreferenced_ones_are_not(tree: Path) -> None:
    result = build.build([tree])
    assert result.ok, [d.render() for d in result.diagnostics]
    cert = model.Secret("bookinfo-cert", certificate_chain="CERT", private_key="KEY")
    other = model.Secret("unrelated", certificate_chain="C", private_key="K")
    snap = build.snapshot_for(result, GATEWAY, secrets={"bookinfo-cert": cert, "unrelated": other})
    assert sorted(snap.get(type_urls.SECRET)) == ["bookinfo-cert"]
    assert build.proxy_config(result, GATEWAY).secret_references() == {"bookinfo-cert"}


def test_missing_credential_is_refused_not_served(tree: Path) -> None:
    result = build.build([tree])
    with pytest.raises(build.InconsistentSnapshot, match="bookinfo-cert"):
        build.snapshot_for(result, GATEWAY)
