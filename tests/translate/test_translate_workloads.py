"""Workloads as Kubernetes declares them: a node id names a Pod, or a pod of a Deployment, StatefulSet, DaemonSet or
ReplicaSet by the names Kubernetes generates; the pod template's labels, service account and ports are what the
proxy gets, as WorkloadEntry's would be."""

from __future__ import annotations

import pytest
from translate_harness import build_mesh, by_name, config_for

from compiler import model, pipeline, translate
from compiler.load import load_text
from compiler.translate import peer
from compiler.translate.describe import describe

NODE = "sidecar~{ip}~{pod}.shop~shop.svc.cluster.local"
APPS = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: web}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: shop}
spec:
  replicas: 3
  strategy: {type: RollingUpdate}
  selector: {matchLabels: {app: reviews, version: v1}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec:
      serviceAccountName: bookinfo-reviews
      containers:
      - name: reviews
        image: example/reviews:1
        ports: [{name: web, containerPort: 9081}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  serviceName: db
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop}
spec:
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: batch, namespace: shop}
spec:
  template:
    metadata: {labels: {app: batch}}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1-7d9f8c6b5-x2x4z, namespace: shop, labels: {app: reviews, version: canary}}
spec: {serviceAccountName: canary, containers: [{name: reviews, ports: [{name: web, containerPort: 9090}]}]}
"""


@pytest.mark.parametrize(("pod", "labels"), [
    ("reviews-v1-5d8f9b7c4-bq2xz", {"app": "reviews", "version": "v1"}),  # Deployment: <name>-<hash>-<suffix>
    ("db-0", {"app": "db"}), ("db-12", {"app": "db"}),  # StatefulSet: <name>-<ordinal>
    ("agent-x2x4z", {"app": "agent"}),  # DaemonSet: <name>-<suffix>
    ("batch-bq2xz", {"app": "batch"}),  # ReplicaSet: <name>-<suffix>
    ("reviews-v1-7d9f8c6b5-x2x4z", {"app": "reviews", "version": "canary"}),  # the Pod of that name first
])
def test_a_pod_name_resolves_to_its_workload(pod: str, labels: dict[str, str]) -> None:
    mesh = build_mesh(APPS)
    proxy = translate.find_proxy(mesh, NODE.format(ip="10.1.0.7", pod=pod))
    assert proxy.label_map() == labels and proxy.ip == "10.1.0.7" and proxy.name == pod


@pytest.mark.parametrize("pod", [
    "reviews-v1",  # the Deployment's own name is no pod's
    "reviews-v1-5d8f9b7c4-bq2x",  # suffix of 4
    "reviews-v1-5d8f9b7c4-bq2x1",  # '1' is not in the generated alphabet
    "reviews-v1-bq2xz",  # no template hash
    "db-01", "db-x",  # not an ordinal
    "agent-0",  # a DaemonSet's pods have a generated suffix
])
def test_a_name_that_fits_no_generated_pattern_is_an_unknown_proxy(pod: str) -> None:
    mesh = build_mesh(APPS)
    with pytest.raises(LookupError, match="Deployment, StatefulSet, DaemonSet or ReplicaSet"):
        translate.find_proxy(mesh, NODE.format(ip="10.1.0.7", pod=pod))


def test_a_deployment_pod_serves_what_selects_its_template_at_its_container_port() -> None:
    cfg = config_for(APPS, NODE.format(ip="10.1.0.7", pod="reviews-v1-5d8f9b7c4-bq2xz"))
    inbound = [li for li in cfg.listeners if li.direction is model.TrafficDirection.INBOUND]
    assert [(li.address, li.port) for li in inbound] == [("10.1.0.7", 9081)]  # targetPort "web" of the template


def test_the_pod_itself_overrides_its_template() -> None:
    cfg = config_for(APPS, NODE.format(ip="10.1.0.8", pod="reviews-v1-7d9f8c6b5-x2x4z"))
    inbound = [li for li in cfg.listeners if li.direction is model.TrafficDirection.INBOUND]
    assert [(li.address, li.port) for li in inbound] == [("10.1.0.8", 9090)]


POLICY = """
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec:
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: only-v1, namespace: shop}
spec:
  workloadSelector: {labels: {version: v1}}
  egress: [{hosts: [./reviews.shop.svc.cluster.local]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-v1, namespace: shop}
spec:
  selector: {matchLabels: {version: v1}}
  action: DENY
  rules: [{from: [{source: {namespaces: [other]}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets: [{name: v1, labels: {version: v1}}]
"""


def test_template_labels_pick_sidecars_and_policies() -> None:
    v1 = config_for(APPS + POLICY, NODE.format(ip="10.1.0.7", pod="reviews-v1-5d8f9b7c4-bq2xz"))
    db = config_for(APPS + POLICY, NODE.format(ip="10.1.0.9", pod="db-0"))
    assert "outbound|9080||ratings.shop.svc.cluster.local" not in {c.name for c in v1.clusters}  # the Sidecar
    assert "outbound|9080||ratings.shop.svc.cluster.local" in {c.name for c in db.clusters}
    assert any(li.direction is model.TrafficDirection.INBOUND and "deny-v1" in repr(li) for li in v1.listeners)
    assert not any("deny-v1" in repr(li) for li in db.listeners)


def test_describe_names_the_workload_with_its_file_and_line() -> None:
    mesh = build_mesh(APPS)
    for pod, kind, line in (("reviews-v1-5d8f9b7c4-bq2xz", "Deployment", 9), ("db-3", "StatefulSet", 25),
                            ("reviews-v1-7d9f8c6b5-x2x4z", "Pod", 49)):
        found = describe(mesh, translate.find_proxy(mesh, NODE.format(ip="10.1.0.7", pod=pod))).applied[0]
        assert (found.kind, found.line) == (kind, line) and "the workload" in found.why, found


def test_service_accounts_of_the_selected_workloads_are_the_sans_verified() -> None:
    cfg = config_for(APPS + POLICY, NODE.format(ip="10.1.0.9", pod="db-0"))
    cluster = by_name(cfg.clusters, "outbound|9080|v1|reviews.shop.svc.cluster.local")
    assert cluster.tls is not None
    assert cluster.tls.subject_alt_names == ("spiffe://cluster.local/ns/shop/sa/bookinfo-reviews",
                                             "spiffe://cluster.local/ns/shop/sa/canary")


CLUSTER_PODS = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: plain}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-1, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
ports: [{name: http, port: 9080}]
endpoints:
- addresses: [10.1.0.1]
  targetRef: {kind: Pod, name: reviews-a}
- addresses: [10.1.0.2]
  targetRef: {kind: Pod, name: reviews-b}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-a, namespace: shop, labels: {app: reviews, version: v1}}
spec: {serviceAccountName: reviews}
status: {podIP: 10.1.0.1, phase: Running}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-b, namespace: shop, labels: {app: reviews, version: v2, sidecar.istio.io/inject: "false"}}
status: {podIP: 10.1.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: plain, labels: {app: web}}
status: {podIP: 10.2.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: opted-in, namespace: plain, labels: {app: web, sidecar.istio.io/inject: "true"}}
status: {podIP: 10.2.0.2}
"""


def test_endpoints_carry_their_pods_labels_and_identity() -> None:
    mesh = build_mesh(CLUSTER_PODS)
    (service,) = mesh.services["reviews.shop.svc.cluster.local"]
    assert {i.address: (dict(i.labels)["version"], i.service_account) for i in service.instances} == {
        "10.1.0.1": ("v1", "reviews"), "10.1.0.2": ("v2", "default")}


def test_only_pods_istio_would_inject_are_listed_as_proxies() -> None:
    mesh = build_mesh(CLUSTER_PODS)
    assert [(p.namespace, p.name, p.ip) for p in translate.proxies(mesh)] == [
        ("plain", "opted-in", "10.2.0.2"), ("shop", "reviews-a", "10.1.0.1")]


def test_each_controller_and_ip_less_pod_is_listed_once_under_a_name_that_resolves_back() -> None:
    mesh = build_mesh(APPS)
    listed = translate.proxies(mesh)
    assert [(p.name, p.ip) for p in listed] == [
        ("agent-xxxxx", "192.0.2.1"), ("batch-xxxxx", "192.0.2.1"), ("db-0", "192.0.2.1"),
        ("reviews-v1-7d9f8c6b5-x2x4z", "192.0.2.1"),  # the bare Pod, by its own name (it has no IP)
        ("reviews-v1-xxxxx-xxxxx", "192.0.2.1")]
    for proxy in listed:
        assert translate.find_proxy(mesh, proxy.node_id) == proxy
    assert [p.node_id for p in translate.proxies(build_mesh(APPS))] == [p.node_id for p in listed]


def test_controllers_istio_would_not_inject_and_controllers_with_a_listed_pod_are_not_listed() -> None:
    opted_out = """
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: batch, namespace: shop}
spec:
  template:
    metadata: {labels: {app: batch, sidecar.istio.io/inject: "false"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: plain}
spec:
  template:
    metadata: {labels: {app: web}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews, namespace: shop}
spec:
  template:
    metadata: {labels: {app: reviews}}
"""
    # shop/batch opts out, plain is declared without injection, shop/reviews-a (an EndpointSlice's, with an IP)
    # is the Deployment's pod by its name: no other proxy stands for it
    mesh = build_mesh(CLUSTER_PODS.replace("name: reviews-a}", "name: reviews-5d8f9-x2x4z}")
                      .replace("{name: reviews-a,", "{name: reviews-5d8f9-x2x4z,") + opted_out)
    assert [(p.namespace, p.name, p.ip) for p in translate.proxies(mesh)] == [
        ("plain", "opted-in", "10.2.0.2"), ("shop", "reviews-5d8f9-x2x4z", "10.1.0.1")]


def test_unknown_fields_of_a_deployment_are_not_our_business_but_what_we_read_is_checked() -> None:
    checked = pipeline.check_documents(load_text(APPS).documents)
    assert not checked.diagnostics, [d.render() for d in checked.diagnostics]
    bad = APPS.replace("containerPort: 9081", "containerPort: 99999").replace("labels: {app: db}", "labels: {app: 1}")
    found = {(d.code, d.position.line, d.path) for d in pipeline.check_documents(load_text(bad).documents).diagnostics}
    assert found == {("MW0102", 23, "spec.template.spec.containers[0].ports[0].containerPort"),
                     ("MW0102", 31, "spec.template.metadata.labels.app")}
    pod_ip = CLUSTER_PODS.replace("podIP: 10.2.0.1", "podIP: 10.2.0.x")
    found = {(d.code, d.path) for d in pipeline.check_documents(load_text(pod_ip).documents).diagnostics}
    assert found == {("MW0218", "status.podIP")}


GATEWAY = """
---
apiVersion: v1
kind: Service
metadata: {name: ingress, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ingress, namespace: shop}
spec:
  template:
    metadata: {labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: reviews-strict, namespace: shop}
spec:
  selector: {matchLabels: {app: reviews}}
  mtls: {mode: STRICT}
"""


def test_a_gateway_deployment_listens_where_its_service_targets() -> None:
    cfg = config_for(APPS + GATEWAY, "router~10.1.0.5~ingress-5d8f9b7c4-bq2xz.shop~shop.svc.cluster.local")
    assert [(li.address, li.port) for li in cfg.listeners] == [("0.0.0.0", 8080)]  # port 80's targetPort


def test_peer_authentication_selects_by_template_labels() -> None:
    mesh = build_mesh(APPS + GATEWAY)
    reviews = translate.find_proxy(mesh, NODE.format(ip="10.1.0.7", pod="reviews-v1-5d8f9b7c4-bq2xz"))
    db = translate.find_proxy(mesh, NODE.format(ip="10.1.0.9", pod="db-0"))
    assert [r.name for r in peer.policies_for(mesh, reviews)] == ["reviews-strict"]
    assert peer.policies_for(mesh, db) == ()
