"""`meshward proxy-config` and `meshward describe` offline (`--file`) against policies-example: istioctl's columns
with real rows, the policy behind each as file:line, -o json/yaml, and exit 1 with one line for an unknown proxy."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ruamel.yaml import YAML

from compiler import proxy_views
from meshward import cli
from meshxds import type_urls

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "policies-example"
PRODUCTPAGE = "sidecar~127.0.0.11~productpage-v1.bookinfo~bookinfo.svc.cluster.local"
GATEWAY = "router~127.0.0.10~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
DR = f"{EXAMPLE}/bookinfo/destination-rules.yaml"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cells(output: str) -> list[list[str]]:
    """Table lines split on runs of 2+ spaces (cells never contain two spaces)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.strip()]


def test_clusters_show_subsets_and_the_destination_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "proxy-config", "cluster", PRODUCTPAGE, "--file", str(EXAMPLE))
    assert code == 0
    rows = cells(out)
    assert rows[0] == ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"]
    reviews = [r for r in rows if r[0] == "reviews.bookinfo.svc.cluster.local"]
    assert reviews == [["reviews.bookinfo.svc.cluster.local", "9080", subset, "outbound", "EDS", f"{DR}:31"]
                       for subset in ("-", "v1", "v2", "v3")]
    assert ["9080", "-", "inbound", "STATIC", "-"] in rows  # inbound|9080||: no FQDN, as istioctl shows it


def test_filters_by_name_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "proxy-config", "cluster", PRODUCTPAGE, "--file", str(EXAMPLE),
                    "--name", "ratings.bookinfo.svc.cluster.local")
    assert {r[0] for r in cells(out)[1:]} == {"ratings.bookinfo.svc.cluster.local"}
    _, out, _ = run(capsys, "proxy-config", "listener", PRODUCTPAGE, "--file", str(EXAMPLE), "--port", "1")
    assert cells(out) == [["ADDRESSES", "PORT", "MATCH", "DESTINATION"]]


def test_listeners_routes_and_endpoints(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "proxy-config", "listener", PRODUCTPAGE, "--file", str(EXAMPLE))
    assert cells(out)[1:] == [["127.0.0.11", "9080", "ALL", "Route: inbound|9080||"],
                              ["127.0.0.1", "9080", "ALL", "Route: 9080"]]
    _, out, _ = run(capsys, "proxy-config", "route", PRODUCTPAGE, "--file", str(EXAMPLE), "--name", "9080")
    rows = cells(out)
    assert rows[0] == ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"]
    assert ["9080", "reviews.bookinfo.svc.cluster.local:9080", "reviews.bookinfo.svc.cluster.local + 4 more...",
            "/* (end-user=jason)", f"{EXAMPLE}/bookinfo/routing/reviews.yaml:4"] in rows
    _, out, _ = run(capsys, "proxy-config", "endpoint", PRODUCTPAGE, "--file", str(EXAMPLE),
                    "--name", "outbound|9080|v2|reviews.bookinfo.svc.cluster.local")
    assert cells(out)[1:] == [["127.0.0.22:9080", "HEALTHY", "-", "outbound|9080|v2|reviews.bookinfo.svc.cluster.local"]]


def test_json_and_yaml_give_the_resources(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("proxy-config", "cluster", PRODUCTPAGE, "--file", str(EXAMPLE), "--name",
            "reviews.bookinfo.svc.cluster.local")
    as_json = json.loads(run(capsys, *args, "-o", "json")[1])
    assert sorted(c["name"] for c in as_json) == sorted(f"outbound|9080|{s}|reviews.bookinfo.svc.cluster.local"
                                                        for s in ("", "v1", "v2", "v3"))
    assert YAML(typ="safe").load(run(capsys, *args, "-o", "yaml")[1]) == as_json
    everything = json.loads(run(capsys, "proxy-config", "all", PRODUCTPAGE, "--file", str(EXAMPLE), "-o", "json")[1])
    assert set(everything) == {"cluster", "listener", "route", "endpoint", "secret"}


def test_bootstrap_is_the_ads_bootstrap_of_the_node(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "proxy-config", "bootstrap", PRODUCTPAGE, "--file", str(EXAMPLE))
    doc = json.loads(out)
    assert code == 0 and doc["node"]["id"] == PRODUCTPAGE and "ads_config" in doc["dynamic_resources"]


@pytest.mark.parametrize("command", [["proxy-config", "cluster"], ["describe"]])
def test_unknown_proxy_exits_1_with_one_line(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    node = "sidecar~127.0.0.99~nobody.bookinfo~bookinfo.svc.cluster.local"
    code, out, err = run(capsys, *command, node, "--file", str(EXAMPLE))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"meshward {command[0]}: unknown proxy {node}: "), err


def test_a_tree_that_does_not_compile_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("kind: VirtualService\napiVersion: networking.istio.io/v1\n"
                                       "metadata: {name: r}\nspec: {hosts: [r], http: [{route: [{weight: -1}]}]}\n")
    code, _, err = run(capsys, "proxy-config", "cluster", PRODUCTPAGE, "--file", str(tmp_path))
    assert code == 2 and "does not compile" in err and err.count("\n") == 1


def test_describe_says_what_applies_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "describe", PRODUCTPAGE, "--file", str(EXAMPLE), "-o", "json")
    assert code == 0
    doc = json.loads(out)
    applied = {(a["kind"], a["name"]): a for a in doc["applied"]}
    sidecar = applied[("Sidecar", "productpage")]
    assert sidecar["why"] == "workloadSelector app=productpage matches the workload's labels"
    assert sidecar["file"] == f"{EXAMPLE}/bookinfo/sidecars.yaml"
    rule = applied[("DestinationRule", "reviews")]
    assert (rule["file"], rule["line"]) == (DR, 31) and rule["why"] == "host reviews.bookinfo.svc.cluster.local, exportTo *"
    assert applied[("VirtualService", "ratings")]["why"].endswith("exportTo bookinfo")
    assert ("Gateway", "bookinfo-gateway") not in applied  # a sidecar is selected by no Gateway
    _, text, _ = run(capsys, "describe", PRODUCTPAGE, "--file", str(EXAMPLE))
    assert f"   bookinfo/reviews  {DR}:31\n      host reviews.bookinfo.svc.cluster.local, exportTo *\n" in text


def test_describe_a_gateway_names_its_gateway_and_bound_virtual_services(capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(run(capsys, "describe", GATEWAY, "--file", str(EXAMPLE), "-o", "json")[1])
    kinds = {(a["kind"], a["name"]): a["why"] for a in doc["applied"]}
    assert kinds[("Gateway", "bookinfo-gateway")] == "selector istio=ingressgateway matches the workload's labels"
    assert kinds[("VirtualService", "bookinfo")].startswith("bound to gateway bookinfo/bookinfo-gateway; hosts ")
    assert not any(kind == "Sidecar" for kind, _ in kinds)


def _certificate() -> tuple[x509.Certificate, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.com")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0xABC123).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=90))
            .sign(key, hashes.SHA256()))
    return cert, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())


def test_secrets_show_the_certificate_never_the_key() -> None:
    cert, key = _certificate()
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    dump = {type_urls.SECRET: [
        {"name": "shop-cert", "tls_certificate": {"certificate_chain": {"inline_string": pem},
                                                  "private_key": {"inline_string": key.decode()}}},
        {"name": "shop-cert-cacert", "validation_context": {"trusted_ca": {"inline_string": pem}}}]}
    assert proxy_views.rows(dump, "secret") == [
        ("shop-cert", "Cert Chain", "ACTIVE", "true", "abc123", "2026-04-01T00:00:00+00:00",
         "2026-01-01T00:00:00+00:00"),
        ("shop-cert-cacert", "CA", "ACTIVE", "true", "abc123", "2026-04-01T00:00:00+00:00",
         "2026-01-01T00:00:00+00:00")]
    shown = json.dumps(proxy_views.resources(dump, "secret"))
    assert "PRIVATE KEY" not in shown and "[redacted]" in shown


def test_the_console_script_exits_1_for_an_unknown_proxy() -> None:
    done = subprocess.run([sys.executable, "-m", "meshward", "proxy-config", "all", "garbage", "--file",
                           str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and done.stdout == "" and len(done.stderr.splitlines()) == 1


POLICIES = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-only, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{from: [{source: {namespaces: [bookinfo]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: everyone, namespace: bookinfo}
spec: {}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: shop-wide, namespace: shop}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gateways-only, namespace: istio-system}
spec: {selector: {matchLabels: {app: reviews}}}
"""


def test_describe_names_the_security_policies_that_select_the_proxy(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(EXAMPLE, tree)
    (tree / "policies.yaml").write_text(POLICIES)
    reviews = "sidecar~127.0.0.21~reviews-v1.bookinfo~bookinfo.svc.cluster.local"
    for node, selected in ((reviews, True), (PRODUCTPAGE, False)):
        doc = json.loads(run(capsys, "describe", node, "--file", str(tree), "-o", "json")[1])
        found = {(a["kind"], a["name"]): (a["line"], a["why"]) for a in doc["applied"]
                 if a["kind"] in ("PeerAuthentication", "AuthorizationPolicy")}
        mesh_wide = "mesh-wide: no selector, in the root namespace istio-system"
        expected = {("PeerAuthentication", "default"): (1, mesh_wide),
                    ("AuthorizationPolicy", "everyone"): (13, "namespace-wide: no selector, in namespace bookinfo")}
        if selected:
            expected[("AuthorizationPolicy", "reviews-only")] = (6, "selector app=reviews matches the workload's labels")
        assert found == expected, node  # not shop's, nor the root namespace's with a selector (its own workloads')
