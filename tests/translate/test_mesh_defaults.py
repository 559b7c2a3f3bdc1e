"""MeshConfig's mesh-wide defaults in translate, as Pilot applies them: connectTimeout and h2UpgradePolicy on
clusters a DestinationRule leaves unset, and the default exportTo of Services, VirtualServices and
DestinationRules that give none."""

from __future__ import annotations

import pytest
from translate_harness import PRODUCTPAGE, REVIEWS, SHOP, build_mesh, by_name, config_for

from compiler import model, translate

INBOUND = "inbound|9081||"


def mesh(text: str) -> str:
    block = "".join(f"    {line}\n" for line in text.splitlines())
    return f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: istio, namespace: istio-system}}\ndata:\n  mesh: |\n{block}"


def rule(pool: str) -> str:
    return ("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: shop}\n"
            f"spec:\n  host: reviews\n  trafficPolicy:\n    connectionPool: {pool}\n")


def cluster(text: str, name: str = REVIEWS) -> model.Cluster:
    found: model.Cluster = by_name(config_for(SHOP + text, PRODUCTPAGE).clusters, name)
    return found


def test_connect_timeout_is_istios_10s_without_meshconfig() -> None:
    assert cluster("").tcp.connect_timeout_ms == 10_000


def test_mesh_connect_timeout_applies_to_outbound_and_inbound_clusters() -> None:
    text = mesh("connectTimeout: 2500ms")
    assert cluster(text).tcp.connect_timeout_ms == 2_500
    assert cluster(text, INBOUND).tcp.connect_timeout_ms == 2_500  # Pilot's applyConnectionPool: inbound too


@pytest.mark.parametrize("pool", ["{tcp: {connectTimeout: 300ms}}", "{tcp: {connectTimeout: 300ms, maxConnections: 5}}"])
def test_a_rules_connect_timeout_wins_over_the_mesh_default(pool: str) -> None:
    assert cluster(mesh("connectTimeout: 2s") + rule(pool)).tcp.connect_timeout_ms == 300


def test_a_rule_without_connect_timeout_keeps_the_mesh_default() -> None:
    assert cluster(mesh("connectTimeout: 2s") + rule("{tcp: {maxConnections: 5}}")).tcp.connect_timeout_ms == 2_000


@pytest.mark.parametrize(("mesh_policy", "pool", "http2"), [
    ("", "", False),
    ("h2UpgradePolicy: UPGRADE", "", True),
    ("h2UpgradePolicy: DO_NOT_UPGRADE", "", False),
    ("h2UpgradePolicy: UPGRADE", "{http: {h2UpgradePolicy: DO_NOT_UPGRADE}}", False),
    ("h2UpgradePolicy: UPGRADE", "{http: {h2UpgradePolicy: DEFAULT}}", True),
    ("h2UpgradePolicy: UPGRADE", "{http: {useClientProtocol: true}}", False),
    ("h2UpgradePolicy: DO_NOT_UPGRADE", "{http: {h2UpgradePolicy: UPGRADE}}", True),
])
def test_h2_upgrade_is_the_rules_else_the_meshs(mesh_policy: str, pool: str, http2: bool) -> None:
    """pilot/pkg/networking/core/cluster_traffic_policy.go shouldH2Upgrade."""
    text = (mesh(mesh_policy) if mesh_policy else "") + (rule(pool) if pool else "")
    http = cluster(text).http
    assert http is not None and http.http2 is http2


def test_the_mesh_upgrade_leaves_tcp_ports_and_inbound_clusters_alone() -> None:
    text = mesh("h2UpgradePolicy: UPGRADE")
    assert cluster(text, "outbound|5432||db.data.svc.cluster.local").http is None
    inbound = cluster(text, INBOUND).http
    assert inbound is not None and not inbound.http2


# -- default exportTo ------------------------------------------------------------------------------------------

ELSEWHERE = """
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: front}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, namespace: front}
spec: {address: 10.0.2.1, labels: {app: web}}
"""
WEB = "sidecar~10.0.2.1~web.front~front.svc.cluster.local"


def hosts_seen(text: str, node: str) -> set[str]:
    m = build_mesh(SHOP + ELSEWHERE + text)
    return {c.service_host for c in translate.proxy_config(m, translate.find_proxy(m, node)).clusters
            if c.direction is model.TrafficDirection.OUTBOUND}


def test_default_service_export_to_dot_keeps_services_in_their_namespace() -> None:
    text = mesh("defaultServiceExportTo: ['.']")
    assert hosts_seen(text, WEB) == {"web.front.svc.cluster.local"}
    assert "reviews.shop.svc.cluster.local" in hosts_seen(text, PRODUCTPAGE)


def test_an_explicit_export_annotation_wins_over_the_default() -> None:
    text = mesh("defaultServiceExportTo: ['~']") + ELSEWHERE.replace(
        "metadata: {name: web, namespace: front}\nspec:\n  selector",
        "metadata: {name: web, namespace: front, annotations: {networking.istio.io/exportTo: '*'}}\nspec:\n  selector")
    assert hosts_seen(text, PRODUCTPAGE) == {"web.front.svc.cluster.local"}  # `~`: every other service hidden


def test_default_service_export_to_names_namespaces() -> None:
    assert hosts_seen(mesh("defaultServiceExportTo: [front]"), WEB) == {
        "web.front.svc.cluster.local", "reviews.shop.svc.cluster.local", "productpage.shop.svc.cluster.local",
        "db.data.svc.cluster.local"}
    assert hosts_seen(mesh("defaultServiceExportTo: [front]"), PRODUCTPAGE) == set()


ROUTE = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
  - route: [{destination: {host: reviews.shop.svc.cluster.local}}]
    timeout: 7s
"""


def route_timeout(text: str, node: str) -> int | None:
    m = build_mesh(SHOP + ELSEWHERE + text)
    config = translate.proxy_config(m, translate.find_proxy(m, node))
    for table in config.route_configs:
        for vhost in table.virtual_hosts:
            if vhost.host == "reviews.shop.svc.cluster.local":
                action = vhost.routes[0].action
                return action.timeout_ms if isinstance(action, model.Forward) else None
    return None


@pytest.mark.parametrize(("default", "shop", "front"), [("", 7_000, 7_000), ("defaultVirtualServiceExportTo: ['.']", 7_000, 0),
                                                      ("defaultVirtualServiceExportTo: [front]", 0, 7_000)])
def test_default_virtual_service_export_to(default: str, shop: int, front: int) -> None:
    text = (mesh(default) if default else "") + ROUTE
    assert route_timeout(text, PRODUCTPAGE) == shop and route_timeout(text, WEB) == front


DR = """
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy: {connectionPool: {tcp: {connectTimeout: 123ms}}}
"""


def web_reviews_timeout(text: str) -> int:
    m = build_mesh(SHOP + ELSEWHERE + text)
    config = translate.proxy_config(m, translate.find_proxy(m, WEB))
    found: model.Cluster = by_name(config.clusters, REVIEWS)
    return found.tcp.connect_timeout_ms


@pytest.mark.parametrize(("default", "applies"), [
    ("", True), ("defaultDestinationRuleExportTo: ['.']", False), ("defaultDestinationRuleExportTo: ['.', front]", False),
    # Pilot honours only `.` in the default (push_context.go initDestinationRules): anything else is public
    ("defaultDestinationRuleExportTo: [shop]", True), ("defaultDestinationRuleExportTo: ['*']", True),
])
def test_default_destination_rule_export_to(default: str, applies: bool) -> None:
    text = (mesh(default) if default else "") + DR
    assert web_reviews_timeout(text) == (123 if applies else 10_000)


EXTERNAL = """
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: front}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
"""


@pytest.mark.parametrize(("default", "seen"), [("", True), ("defaultServiceExportTo: ['.']", False)])
def test_default_service_export_to_applies_to_service_entries(default: str, seen: bool) -> None:
    text = (mesh(default) if default else "") + EXTERNAL
    assert ("api.example.com" in hosts_seen(text, PRODUCTPAGE)) is seen
    assert "api.example.com" in hosts_seen(text, WEB)
