"""A cluster of pods for the cluster tests: namespace `shop` (injected), the Service `web` with two pods behind one
EndpointSlice, and a client pod whose sidecar the tests compile or run. The repository holds only policy (a
DestinationRule for `web`); everything about workloads comes from the (fake) API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway_tree import make_repo, web_service

CLIENT_NODE = "sidecar~127.0.0.1~client-0.shop~shop.svc.cluster.local"
WEB = "outbound|8080||web.shop.svc.cluster.local"
WEB_PODS = {"web-a": "127.0.0.2", "web-b": "127.0.0.3"}  # compiled, never connected to

POLICY = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec:
  host: web.shop.svc.cluster.local
  trafficPolicy: {connectionPool: {tcp: {maxConnections: 100}}}
"""


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}, "spec": {"finalizers": []}}


def pod(name: str, ip: str, *, ready: bool, app: str = "web") -> dict[str, Any]:
    """A Pod as the API server reports it, with the fields the mesh does not read too."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": app, "version": "v1"},
                         "uid": f"uid-{name}"},
            "spec": {"serviceAccountName": app, "nodeName": "node-1",
                     "containers": [{"name": app, "image": f"example/{app}:1", "ports": [{"containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.9.0.1",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                                      {"type": "ContainersReady", "status": "True" if ready else "False"}]}}


def web_slice(ready: dict[str, bool]) -> dict[str, Any]:
    """The EndpointSlice the endpoint controller keeps for `web`: one endpoint per pod of `ready`."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": "web-x2x4z", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "endpoints": [{"addresses": [WEB_PODS[name]], "conditions": {"ready": up},
                           "targetRef": {"kind": "Pod", "name": name, "namespace": "shop"}}
                          for name, up in sorted(ready.items())],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def populate(apiserver: Any, ready: dict[str, bool]) -> None:
    """The namespace, the client pod, `web`, its pods (ready as said) and their slice."""
    apiserver.apply(namespace())
    apiserver.apply(pod("client-0", "127.0.0.1", ready=True, app="client"))
    apiserver.apply(web_service())
    for name, up in ready.items():
        apiserver.apply(pod(name, WEB_PODS[name], ready=up))
    apiserver.apply(web_slice(ready))


def set_ready(apiserver: Any, ready: dict[str, bool], *, silent: bool = False) -> None:
    """Pods turning ready or not, and the endpoint controller following (the pods first, as in a cluster)."""
    for name, up in ready.items():
        apiserver.apply(pod(name, WEB_PODS[name], ready=up), silent=silent)
    apiserver.apply(web_slice(ready), silent=silent)


def repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "policy.yaml").write_text(POLICY)
    make_repo(root)
    return root


def kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: '{url}'}}}}]\n"
        "users: [{name: nobody, user: {}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: nobody}}]\n")
    return path


def endpoint_addresses(config: dict[str, Any], cluster: str = WEB) -> list[str]:
    """The endpoint addresses a config dump (or `{"error": ...}`) holds for `cluster`."""
    from meshxds import type_urls

    for cla in config.get(type_urls.ENDPOINT, []):
        if cla.get("cluster_name") == cluster:
            return sorted(lb["endpoint"]["address"]["socket_address"]["address"]
                          for group in cla.get("endpoints", []) for lb in group.get("lb_endpoints", []))
    return []
