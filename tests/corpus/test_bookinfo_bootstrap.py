"""`meshward compile --format bootstrap` never writes a bootstrap Envoy refuses: a config that names SDS secrets
it does not hold (a gateway's `credentialName`) fails with MW0410 and exit 1, and `--credentials-dir` satisfies it;
the mesh identity (Istio's bookinfo `destination-rule-all-mtls.yaml`: ISTIO_MUTUAL's `default` and `ROOTCA`) is
not demanded but taken from the agent's socket over Istio's `sds-grpc` cluster, and Envoy accepts that.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pki import pem_pair

from meshward import cli

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "istio-bookinfo"
PRODUCTPAGE = "sidecar~127.0.0.11~productpage-v1.default~default.svc.cluster.local"
WORKLOAD = """apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: productpage-v1, namespace: default}
spec:
  address: 127.0.0.11
  labels: {app: productpage, version: v1}
"""
GATEWAY_NODE = "router~127.0.8.9~ingress.default~default.svc.cluster.local"
GATEWAY = """apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ingress, namespace: default}
spec:
  address: 127.0.8.9
  labels: {istio: ingressgateway}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: secure, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: SIMPLE, credentialName: shop-cert}
"""


@pytest.mark.envoy
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/istio-bookinfo is not present")
def test_istio_mutual_takes_the_identity_from_the_agent(tmp_path: Path, envoy_bin: str) -> None:
    (tmp_path / "workload.yaml").write_text(WORKLOAD)
    for name in ("platform/kube/bookinfo.yaml", "networking/destination-rule-all-mtls.yaml"):
        (tmp_path / Path(name).name).write_text((CORPUS / name).read_text())
    out = tmp_path / "envoy.json"
    assert cli.main(["compile", str(tmp_path), "--node", PRODUCTPAGE, "--format", "bootstrap",
                     "--sds-socket", "/run/meshward/sds.sock", "-o", str(out)]) == 0
    static = json.loads(out.read_text())["static_resources"]
    assert "secrets" not in static, "no control plane holds the workload's key: the agent serves it"
    sds = {c["name"]: c for c in static["clusters"]}["sds-grpc"]
    assert sds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "pipe": {"path": "/run/meshward/sds.sock"}}
    checked = subprocess.run([envoy_bin, "--mode", "validate", "-c", str(out), "--log-level", "warn"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stderr[-2000:]
    # without --sds-socket: Istio's socket path, relative to the proxy's working directory
    assert cli.main(["compile", str(tmp_path), "--node", PRODUCTPAGE, "--format", "bootstrap", "-o", str(out)]) == 0
    assert "./var/run/secrets/workload-spiffe-uds/socket" in out.read_text()


def _gateway_tree(root: Path) -> Path:
    (root / "tree").mkdir()
    (root / "tree" / "gateway.yaml").write_text(GATEWAY)
    return root / "tree"


def test_credential_name_without_credentials_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["compile", str(_gateway_tree(tmp_path)), "--node", GATEWAY_NODE, "--format", "bootstrap"])
    err = capsys.readouterr().err
    assert code == 1 and "MW0410" in err and "'shop-cert'" in err and "--credentials-dir" in err, err


@pytest.mark.envoy
def test_credentials_dir_gives_a_bootstrap_envoy_accepts(envoy_bin: str, tmp_path: Path) -> None:
    cert, key = pem_pair()
    (tmp_path / "creds" / "shop-cert").mkdir(parents=True)
    (tmp_path / "creds" / "shop-cert" / "tls.crt").write_text(cert)
    (tmp_path / "creds" / "shop-cert" / "tls.key").write_text(key)
    out = tmp_path / "envoy.json"
    assert cli.main(["compile", str(_gateway_tree(tmp_path)), "--node", GATEWAY_NODE, "--format", "bootstrap",
                     "--credentials-dir", str(tmp_path / "creds"), "-o", str(out)]) == 0
    checked = subprocess.run([envoy_bin, "--mode", "validate", "-c", str(out), "--log-level", "warn"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stderr[-2000:]


def test_refused_credentials_dir_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "creds" / "shop-cert").mkdir(parents=True)
    (tmp_path / "creds" / "shop-cert" / "tls.crt").write_text("not pem")
    (tmp_path / "creds" / "shop-cert" / "tls.key").write_text("not pem")
    code = cli.main(["compile", str(_gateway_tree(tmp_path)), "--node", GATEWAY_NODE, "--format", "bootstrap",
                     "--credentials-dir", str(tmp_path / "creds")])
    assert code == 2 and "shop-cert" in capsys.readouterr().err
