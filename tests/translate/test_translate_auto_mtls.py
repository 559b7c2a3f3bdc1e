"""Outbound auto mTLS (Pilot's cluster_tls.go): which clusters get transport_socket_matches, with which SNI and
SANs, and when a DestinationRule's tls, a DISABLE namespace or a mesh-external service turn it off."""

from __future__ import annotations

import pytest
from translate_harness import by_name, config_for

from compiler import model

NODE = "sidecar~10.0.0.1~client.app~app.svc.cluster.local"
BASE = """
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: app}
spec: {address: 10.0.0.1, labels: {app: client}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, namespace: shop}
spec: {address: 10.0.1.1, serviceAccount: web-sa, labels: {app: web, LABEL}}
"""
MESH = "security.istio.io/tlsMode: istio"
CLUSTER = "outbound|8080||web.shop.svc.cluster.local"


def cluster(extra: str = "", labels: str = MESH) -> model.Cluster:
    cfg = config_for(BASE.replace("LABEL", labels) + extra, NODE)
    found: model.Cluster = by_name(cfg.clusters, CLUSTER)
    return found


def test_endpoints_labelled_istio_get_mtls_with_pilots_sni_and_sans() -> None:
    c = cluster()
    assert c.auto_mtls
    assert c.tls == model.UpstreamTls(model.TlsMode.ISTIO_MUTUAL, sni="outbound_.8080_._.web.shop.svc.cluster.local",
                                      subject_alt_names=("spiffe://cluster.local/ns/shop/sa/web-sa",),
                                      credential_secret="default", ca_secret="ROOTCA",
                                      secrets_from=model.SecretSource.AGENT)


def test_without_a_labelled_endpoint_plaintext() -> None:
    c = cluster(labels="version: v1")
    assert (c.auto_mtls, c.tls) == (False, None)


@pytest.mark.parametrize("extra", [
    ("---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: d, namespace: shop}\n"
    "spec: {mtls: {mode: DISABLE}}\n"),
    ("---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: d, namespace: istio-system}\n"
    "spec: {mtls: {mode: DISABLE}}\n"),
    ("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, namespace: shop}\n"
    "spec: {host: web, trafficPolicy: {tls: {mode: DISABLE}}}\n"),
], ids=["namespace-disable", "mesh-disable", "rule-disable"])
def test_turned_off(extra: str) -> None:
    c = cluster(extra)
    assert (c.auto_mtls, c.tls) == (False, None)


def test_namespace_mode_beats_the_mesh_disable() -> None:
    extra = ("---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: d, namespace: "
             "istio-system}\nspec: {mtls: {mode: DISABLE}}\n---\napiVersion: security.istio.io/v1\nkind: "
             "PeerAuthentication\nmetadata: {name: d, namespace: shop}\nspec: {mtls: {mode: STRICT}}\n")
    assert cluster(extra).auto_mtls


def test_a_rules_istio_mutual_is_its_own_and_takes_the_service_accounts() -> None:
    c = cluster("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, namespace: shop}"
                "\nspec: {host: web, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}\n", labels="version: v1")
    assert not c.auto_mtls, "a rule's ISTIO_MUTUAL applies to every endpoint (transport_socket, no matches)"
    assert c.tls is not None and c.tls.subject_alt_names == ("spiffe://cluster.local/ns/shop/sa/web-sa",)
