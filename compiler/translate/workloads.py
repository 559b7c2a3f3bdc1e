"""Kubernetes workloads: the pods a tree (or a cluster) declares, and which one a proxy's node id names.

A node id `sidecar~IP~POD.NS~...` names a pod. A cluster reports the Pod itself (labels, service account, IP); a
policy repository only holds the controllers that make pods, whose pod names follow fixed patterns
(pkg/controller in Kubernetes): a Deployment's pods are `<deployment>-<pod-template-hash>-<suffix>` (through its
ReplicaSet `<deployment>-<hash>`), a ReplicaSet's and a DaemonSet's `<name>-<suffix>`, a StatefulSet's
`<name>-<ordinal>`, hash and suffix in the API machinery's safe alphabet. Istio finds a pod's workload through its
owner references; without the pod, the name is what tells, so `owner` reads it back. What a pod brings is its
template's: labels, service account, named container ports, and whether Istio's webhook would inject a sidecar.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

from compiler.api.workloads import PodSpec
from compiler.resources import Resource
from compiler.translate import specs
from compiler.translate.services import Labels, Port, sorted_labels

INJECT = "sidecar.istio.io/inject"  # pod label (or, older, annotation): "false" opts out, "true" opts in
NAMESPACE_INJECTION = "istio-injection"  # namespace label: enabled / disabled
NAMESPACE_REVISION = "istio.io/rev"  # namespace label: injected by that control plane revision
DEFAULT_SERVICE_ACCOUNT = "default"  # what the API server gives a pod that names none
# k8s.io/apimachinery/pkg/util/rand: generated suffixes and SafeEncodeString'd hashes use only these characters
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_SUFFIX = re.compile(f"[{_SAFE}]{{5}}")
_HASH = re.compile(f"[{_SAFE}]{{1,10}}")
_ORDINAL = re.compile(r"0|[1-9][0-9]*")
# What stands for "any" of a controller's generated hashes and suffixes in the one pod name a tree's proxy list
# gives it (`reviews-v1-xxxxx-xxxxx`): in the alphabet, so `owner` reads the name back, and plainly not a real pod's.
_ANY = "xxxxx"
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool, as the webhook parses it
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclasses.dataclass(frozen=True, slots=True)
class KubeWorkload:
    """A Pod, or the pods of one controller: what the mesh knows of them."""

    kind: str  # Pod, Deployment, StatefulSet, DaemonSet or ReplicaSet
    name: str
    namespace: str
    labels: Labels
    service_account: str
    ports: tuple[tuple[str, int], ...]  # named container ports, first of each name
    injected: bool
    address: str  # a Pod's IP; "" for a controller (its pods' IPs are the cluster's)
    res: Resource

    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def target(self, service_port: Port) -> int:
        """The container port a Service port reaches: its targetPort, by number or by container port name."""
        target = service_port.target_port
        if isinstance(target, int) and target:
            return target
        if isinstance(target, str) and target:
            return next((number for name, number in self.ports if name == target), service_port.number)
        return service_port.number


def _flag(value: str | None) -> bool | None:
    return True if value in _TRUE else False if value in _FALSE else None


def injected(labels: Mapping[str, str], annotations: Mapping[str, str], spec: PodSpec,
             namespace_labels: Mapping[str, str] | None) -> bool:
    """Istio's webhook (pkg/kube/inject/webhook.go injectRequired, with the namespace and object selectors of its
    MutatingWebhookConfiguration): never host-network pods or a namespace labeled `istio-injection=disabled`; a pod's
    `sidecar.istio.io/inject` label (else annotation) decides when set; else its namespace's `istio-injection=
    enabled` or `istio.io/rev` label. `namespace_labels` None: the namespace is declared nowhere (a policy repository
    seldom holds its Namespaces), taken as enabled."""
    if spec.host_network:
        return False
    ns = namespace_labels if namespace_labels is not None else {NAMESPACE_INJECTION: "enabled"}
    if ns.get(NAMESPACE_INJECTION) == "disabled":
        return False
    own = _flag(labels.get(INJECT))
    if own is None:
        own = _flag(annotations.get(INJECT))
    if own is not None:
        return own
    return ns.get(NAMESPACE_INJECTION) == "enabled" or NAMESPACE_REVISION in ns


def _named_ports(spec: PodSpec) -> tuple[tuple[str, int], ...]:
    found: dict[str, int] = {}
    for container in spec.containers or ():
        for p in container.ports or ():
            if p.name:
                found.setdefault(p.name, p.container_port)
    return tuple(found.items())


def _pod(res: Resource, namespaces: Mapping[str, Mapping[str, str]]) -> KubeWorkload:
    body = specs.pod(res)
    spec = body.spec or PodSpec()
    status = body.status
    address = (status.pod_ip or next((p.ip for p in status.pod_ips or ()), "")) if status is not None else ""
    return KubeWorkload("Pod", res.name, res.namespace, sorted_labels(res.labels), _account(spec),
                        _named_ports(spec), injected(res.labels, res.annotations, spec, namespaces.get(res.namespace)),
                        address or "", res)


def _controller(res: Resource, namespaces: Mapping[str, Mapping[str, str]]) -> KubeWorkload:
    template = specs.workload(res).template
    meta = template.metadata if template is not None else None
    spec = (template.spec if template is not None else None) or PodSpec()
    labels = (meta.labels if meta is not None else None) or {}
    annotations = (meta.annotations if meta is not None else None) or {}
    return KubeWorkload(res.kind, res.name, res.namespace, sorted_labels(labels), _account(spec), _named_ports(spec),
                        injected(labels, annotations, spec, namespaces.get(res.namespace)), "", res)


def _order(w: KubeWorkload) -> tuple[str, str, str]:
    return w.namespace, w.name, w.kind


def pod_name(w: KubeWorkload) -> str:
    """A Pod's own name; for a controller, the name of one of its pods with any hash and suffix (a StatefulSet's
    first ordinal): what a proxy list shows for pods whose names only the cluster knows."""
    if w.kind == "Pod":
        return w.name
    if w.kind == "StatefulSet":
        return f"{w.name}-0"
    if w.kind == "Deployment":
        return f"{w.name}-{_ANY}-{_ANY}"
    return f"{w.name}-{_ANY}"


def _account(spec: PodSpec) -> str:
    return spec.service_account_name or spec.service_account or DEFAULT_SERVICE_ACCOUNT


class KubeWorkloads:
    """The Pods and controllers of a revision, by name and by label."""

    def __init__(self, pods: Iterable[Resource], controllers: Iterable[Resource], namespaces: Iterable[Resource]) -> None:
        ns_labels = {r.name: r.labels for r in namespaces}
        self.pods = {(r.namespace, r.name): _pod(r, ns_labels) for r in pods}
        self._controllers = {(r.kind, r.namespace, r.name): _controller(r, ns_labels) for r in controllers}
        self._by_label: dict[tuple[str, str, str], list[KubeWorkload]] = {}
        for w in (*self.pods.values(), *self._controllers.values()):
            for k, v in w.labels:
                self._by_label.setdefault((w.namespace, k, v), []).append(w)

    def __bool__(self) -> bool:
        return bool(self.pods or self._controllers)

    def declared(self) -> list[KubeWorkload]:
        """The Pods, then the controllers, each sorted by namespace and name."""
        return [*sorted(self.pods.values(), key=_order), *sorted(self._controllers.values(), key=_order)]

    def owner(self, namespace: str, pod: str) -> KubeWorkload | None:
        """The Pod named `pod`, else the controller whose generated pod names `pod` fits (the longest name first:
        `web-5d8f9-x2x4z` is DaemonSet or ReplicaSet `web-5d8f9`'s before Deployment `web`'s)."""
        found = self.pods.get((namespace, pod))
        return found if found is not None else self.controller(namespace, pod)

    def controller(self, namespace: str, pod: str) -> KubeWorkload | None:
        """The controller whose generated pod names `pod` fits, whether or not a Pod of that name is known."""
        head, _, suffix = pod.rpartition("-")
        if not head:
            return None
        candidates: list[tuple[str, str]] = []
        if _ORDINAL.fullmatch(suffix):
            candidates.append(("StatefulSet", head))
        if _SUFFIX.fullmatch(suffix):
            candidates += [("DaemonSet", head), ("ReplicaSet", head)]
            deployment, _, template_hash = head.rpartition("-")
            if deployment and _HASH.fullmatch(template_hash):
                candidates.append(("Deployment", deployment))
        return next((w for kind, name in candidates
                     if (w := self._controllers.get((kind, namespace, name))) is not None), None)

    def select(self, namespace: str, selector: Mapping[str, str] | None) -> list[KubeWorkload]:
        """The Pods and controllers of `namespace` whose pod labels include `selector`; none for an empty one (a
        Service without a selector has its endpoints managed by hand)."""
        if not selector:
            return []
        (k0, v0), *rest = sorted(selector.items())
        return [w for w in self._by_label.get((namespace, k0, v0), ())
                if all(dict(w.labels).get(k) == v for k, v in rest)]
