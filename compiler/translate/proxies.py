"""Proxies: from an Istio node id to the workload it runs for, and the list of every proxy a tree describes.

A node id `TYPE~IP~NAME.NAMESPACE~DOMAIN` names a workload: a WorkloadEntry, Pod or EndpointSlice endpoint (by its
targetRef) of that name in that namespace; else the Deployment, StatefulSet, DaemonSet or ReplicaSet whose
generated pod names the name fits (compiler.translate.workloads); failing the name, the workload with that IP in
that namespace. Its labels pick Gateways (selector, any namespace, as Istio), Sidecars, DestinationRules,
PeerAuthentications and AuthorizationPolicies (workloadSelector / selector). A workload selected by a Gateway
with a non-empty selector is listed as a router (gateway), every other one as a sidecar; a Pod Istio would not
inject is not listed. A controller's pods (and a Pod without an IP) have their names or IPs from the cluster: the
list stands one proxy for all of them, named as `workloads.pod_name` (which resolves back to it) at UNKNOWN_IP.
"""

from __future__ import annotations

from compiler import model, naming
from compiler.translate.mesh import GatewayEntry, Mesh, Workload
from compiler.translate.scope import selects
from compiler.translate.workloads import pod_name
from compiler.validate.hosts import is_ip

# The IP of a listed proxy whose pod's IP only the cluster knows: TEST-NET-1 (RFC 5737, documentation only), so no
# real pod has it; it names the proxy's inbound listeners (`192.0.2.1_9080`), as a pod's IP would.
UNKNOWN_IP = "192.0.2.1"


def _proxy(kind: model.ProxyKind, wl: Workload, ip: str = "") -> model.Proxy:
    address = ip or wl.address
    return model.Proxy(naming.node_id(kind, address, wl.name, wl.namespace), kind, address, wl.name,
                       wl.namespace, wl.labels, wl.locality)


def find_proxy(mesh: Mesh, node_id: str) -> model.Proxy:
    """LookupError when the node id is malformed or names no workload (the message says which)."""
    try:
        node = naming.parse_node_id(node_id)
    except ValueError as err:
        raise naming.InvalidNodeId(str(err)) from None
    wl = mesh.workloads.get((node.namespace, node.name)) or _kube_workload(mesh, node)
    if wl is None:
        wl = next((w for w in mesh.workloads_by_ip.get(node.ip, ()) if w.namespace == node.namespace), None)
    if wl is None:
        raise LookupError(f"no WorkloadEntry, Pod or EndpointSlice endpoint named {node.name!r}, no Deployment, "
                          f"StatefulSet, DaemonSet or ReplicaSet whose pods are named so, and no workload with IP "
                          f"{node.ip} in namespace {node.namespace!r}")
    proxy = _proxy(node.kind, wl, node.ip if node.ip else "")
    return model.Proxy(node_id, proxy.kind, proxy.ip, proxy.name, proxy.namespace, proxy.labels, proxy.locality)


def _kube_workload(mesh: Mesh, node: naming.NodeId) -> Workload | None:
    """The Pod (without an IP of its own yet) or pod template the node's name resolves to, at the node's IP."""
    owner = mesh.kube.owner(node.namespace, node.name) if mesh.kube else None
    if owner is None:
        return None
    return Workload(node.name, node.namespace, owner.address or node.ip, owner.labels, owner.injected)


def gateways_for(mesh: Mesh, proxy: model.Proxy) -> list[GatewayEntry]:
    labels = proxy.label_map()
    return [g for g in mesh.gateways if selects(dict(g.selector), labels)]


def is_router(mesh: Mesh, wl: Workload) -> bool:
    labels = wl.label_map()
    return any(g.selector and selects(dict(g.selector), labels) for g in mesh.gateways)


def proxies(mesh: Mesh) -> list[model.Proxy]:
    """A workload addressed by a DNS name or a unix socket (a VM behind a name, a ServiceEntry endpoint) runs no
    proxy of ours: a node id carries an IP, and a gateway binds its listeners to it."""
    listed = [wl for wl in mesh.workloads.values() if wl.injected and is_ip(wl.address)]
    out = [_proxy(_kind(mesh, wl), wl) for wl in listed]
    out += _templates(mesh, listed)
    return sorted(out, key=lambda p: (p.namespace, p.name))


def _kind(mesh: Mesh, wl: Workload) -> model.ProxyKind:
    return model.ProxyKind.ROUTER if is_router(mesh, wl) else model.ProxyKind.SIDECAR


def _templates(mesh: Mesh, listed: list[Workload]) -> list[model.Proxy]:
    """One proxy for each injected controller, and each injected Pod without an IP, that has none listed yet (a
    Pod or an EndpointSlice endpoint with an IP may be one of its pods by name); none for one whose name resolves
    to another (a Pod named so, a DaemonSet and a ReplicaSet of one name: `owner` picks one)."""
    kube = mesh.kube
    if not kube:
        return []
    have = {id(owner) for wl in listed if (owner := kube.controller(wl.namespace, wl.name)) is not None}
    out = []
    for w in kube.declared():
        pod = pod_name(w)
        if (not w.injected or id(w) in have or (w.kind == "Pod" and w.address)
                or (w.namespace, pod) in mesh.workloads or kube.owner(w.namespace, pod) is not w):
            continue
        wl = Workload(pod, w.namespace, UNKNOWN_IP, w.labels, True)
        out.append(_proxy(_kind(mesh, wl), wl))
    return out
