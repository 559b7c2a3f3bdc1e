"""What injection adds to a pod, and whether a pod gets it: the one definition both `meshward inject` (files) and
the admission webhook (`serve --inject-webhook`) use.

A pod gets two containers, as Istio's template gives it istio-proxy and (inside it) pilot-agent
(manifests/charts/istio-control/istio-discovery/files/injection-template.yaml):
- `istio-proxy`: Envoy, with a bootstrap that reaches the reconciler's Service over ADS and the agent's SDS socket.
  The node id needs the pod's name and IP, known only once it runs, so it is not in the bootstrap: the downward API
  puts them in the environment and Envoy's `--service-node` reads them (Kubernetes expands `$(VAR)` in args).
  Istio's name, so `kubectl logs -c istio-proxy` and tools that look for it still work.
- `meshward-agent`: `meshward agent`, which gets the workload's certificate from the reconciler's CA with a projected
  service-account token (audience `istio-ca`, checked there by a TokenReview) and serves it to Envoy over SDS on a
  socket in a shared in-memory volume. It verifies the CA with the root in the `meshward-ca-root` ConfigMap of the
  pod's namespace (Istio's istiod publishes `istio-ca-root-cert` the same way; meshward does not create it).

Metrics as Istio's proxies give them: Envoy's stats with Istio's labels (`source_workload`: the workload the pod
belongs to, worked out as pkg/kube/util.go GetDeployMetaFromPod does; `source_workload_namespace`: the pod's) at
`:15090/stats/prometheus`, and the scrape annotations Istio puts on an injected pod (pkg/kube/inject/webhook.go
applyPrometheusMerge), unless the pod has its own: with no agent to merge the application's metrics into Envoy's,
a pod's own `prometheus.io/*` are left as they are, and `prometheus.io/scrape: "false"` is respected.

Whether (pkg/kube/inject/inject.go, injectRequired): never twice (a pod that has `istio-proxy` is left as it is, so
injecting twice is injecting once), never when `sidecar.istio.io/inject` is "false" as a pod label or annotation,
never for a pod on the host network. No traffic capture (no iptables init container): applications reach the mesh
as the Sidecar resource's `captureMode: NONE` listeners say (README, Limitations).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from reconciler.xds import bootstrap

PROXY = "istio-proxy"
AGENT = "meshward-agent"
INJECT = "sidecar.istio.io/inject"  # label or annotation; "false" opts a pod out
WORKLOAD_KINDS = frozenset({"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})

_NODE = "sidecar~$(POD_IP)~$(POD_NAME).$(POD_NAMESPACE)~$(POD_NAMESPACE).svc.cluster.local"
_SDS_DIR = "/var/run/meshward/sds"
_TOKEN_DIR = "/var/run/secrets/meshward"
_ROOT_DIR = "/var/run/meshward/ca"
_PROXY_UID = 1337  # Istio's proxy user
_ENVOY_ADMIN_PORT = 15000  # Istio's; on 127.0.0.1 only
STATS_PORT = 15090  # Istio's Envoy Prometheus port (tools/packaging/common/envoy_bootstrap.json)
STATS_PATH = "/stats/prometheus"
_SCRAPE = "prometheus.io/scrape"
_CRON_JOB = re.compile(r"^(.+)-\d{8,10}$")  # a Job a CronJob made: its name and a timestamp (GetDeployMetaFromPod)


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """Where the injected containers come from and what they reach: the defaults are deploy/'s names."""

    xds_address: str = "meshward.meshward-system.svc:15010"
    ca_address: str = "meshward.meshward-system.svc:15012"
    proxy_image: str = "envoyproxy/envoy:v1.40.0"  # the Envoy the tests validate every config with
    agent_image: str = "ghcr.io/meshward/meshward:0.1.0"
    trust_domain: str = "cluster.local"
    ca_root_config_map: str = "meshward-ca-root"
    xds_tls: bool = False  # Envoy reaches `serve --xds-tls` with the agent's certificate (bootstrap.xds_transport_socket)


class Decision(enum.StrEnum):
    """What injection did to one object; stable values the command's summary and the webhook's log print."""

    INJECTED = "injected"
    ALREADY_INJECTED = "already injected"
    OPTED_OUT = "opted out (sidecar.istio.io/inject: false)"
    HOST_NETWORK = "on the host network"
    NOT_A_WORKLOAD = "not a workload"


class NotAPodSpec(ValueError):
    """A workload kind whose pod spec is not where or what Kubernetes requires (the API server would refuse it)."""


def pod_of(doc: MutableMapping[str, Any]) -> tuple[MutableMapping[str, Any], MutableMapping[str, Any]] | None:
    """(metadata, spec) of the pod a workload document makes, or None for another kind. NotAPodSpec when the
    workload has no pod spec with a list of containers."""
    kind = doc.get("kind")
    if kind not in WORKLOAD_KINDS or not isinstance(doc.get("apiVersion"), str):
        return None
    holder = doc if kind == "Pod" else (doc.get("spec") or {}).get("template")
    if not isinstance(holder, MutableMapping) or not isinstance(holder.get("spec"), MutableMapping) \
            or not isinstance(holder["spec"].get("containers"), list):
        where = "spec.containers" if kind == "Pod" else "spec.template.spec.containers"
        raise NotAPodSpec(f"{kind} {_name(doc)}: {where} is not a list of containers")
    if holder.get("metadata") is None:
        holder["metadata"] = {}
    return holder["metadata"], holder["spec"]


def decide(metadata: MutableMapping[str, Any], spec: MutableMapping[str, Any]) -> Decision:
    if any(isinstance(c, MutableMapping) and c.get("name") == PROXY for c in spec["containers"]):
        return Decision.ALREADY_INJECTED
    for key in ("labels", "annotations"):
        if str((metadata.get(key) or {}).get(INJECT, "")).lower() == "false":
            return Decision.OPTED_OUT
    if spec.get("hostNetwork") is True:
        return Decision.HOST_NETWORK
    return Decision.INJECTED


def inject(doc: MutableMapping[str, Any], options: Options) -> Decision:
    """Inject into `doc` in place (a plain dict or ruamel's round-trip map) when it is a workload that wants it."""
    pod = pod_of(doc)
    if pod is None:
        return Decision.NOT_A_WORKLOAD
    decision = decide(*pod)
    if decision is Decision.INJECTED:
        metadata, spec = pod
        spec["containers"].extend(containers(options, workload_of(doc, metadata)))
        if not isinstance(spec.get("volumes"), list):
            spec["volumes"] = []
        spec["volumes"].extend(volumes(options))
        annotations = scrape_annotations(metadata)
        if annotations:
            if not isinstance(metadata.get("annotations"), MutableMapping):
                metadata["annotations"] = {}
            metadata["annotations"].update(annotations)
    return decision


def containers(options: Options, workload: str) -> list[dict[str, Any]]:
    """`workload`: the `source_workload` label of the proxy's stats (`workload_of`)."""
    return [_proxy(options, workload), _agent(options)]


def workload_of(doc: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
    """The workload a pod belongs to, as Istio names it in metrics: a controller's own name (`meshward inject` of a
    Deployment...); for a pod, its controller's as pkg/kube/util.go GetDeployMetaFromPod works it out (a
    ReplicaSet's Deployment, a Job's CronJob), else its name, else (a generated name) the name it gets
    (`$(POD_NAME)`, which Kubernetes expands in the container's args)."""
    if doc.get("kind") != "Pod":
        return _text(doc.get("metadata"), "name") or "$(POD_NAME)"
    name = _text(metadata, "name")
    owner = _controller(metadata) if _text(metadata, "generateName") else None
    if owner is None:
        return name or "$(POD_NAME)"
    kind, owner_name = owner
    labels = _mapping(metadata, "labels")
    for key in ("pod-template-hash", "rollouts-pod-template-hash"):
        suffix = str(labels.get(key) or "")
        if kind == "ReplicaSet" and suffix and owner_name.endswith(suffix):
            return owner_name.removesuffix(f"-{suffix}")
    if kind == "ReplicationController" and labels.get("deploymentconfig"):
        return str(labels["deploymentconfig"])
    cron = _CRON_JOB.match(owner_name) if kind == "Job" else None
    return cron.group(1) if cron else owner_name or name or "$(POD_NAME)"


def scrape_annotations(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Istio's scrape annotations for Envoy's metrics, unless the pod has a `prometheus.io/*` of its own."""
    if any(str(key).startswith("prometheus.io/") for key in _mapping(metadata, "annotations")):
        return {}
    return {_SCRAPE: "true", "prometheus.io/port": str(STATS_PORT), "prometheus.io/path": STATS_PATH}


def _controller(metadata: Mapping[str, Any]) -> tuple[str, str] | None:
    refs = metadata.get("ownerReferences")
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return str(ref.get("kind") or ""), str(ref.get("name") or "")
    return None


def _mapping(holder: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = holder.get(key)
    return value if isinstance(value, Mapping) else {}


def _text(holder: object, key: str) -> str:
    value = holder.get(key) if isinstance(holder, Mapping) else None
    return value if isinstance(value, str) else ""


def volumes(options: Options) -> list[dict[str, Any]]:
    return [
        {"name": "meshward-sds", "emptyDir": {"medium": "Memory"}},
        {"name": "meshward-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "istio-ca", "expirationSeconds": 43200, "path": "token"}}]}},
        {"name": "meshward-ca-root", "configMap": {"name": options.ca_root_config_map}},
    ]


def _proxy(options: Options, workload: str) -> dict[str, Any]:
    config = bootstrap.without_node(options.xds_address, admin_port=_ENVOY_ADMIN_PORT,
                                    sds_socket=f"{_SDS_DIR}/socket", xds_tls=options.xds_tls,
                                    stats_address=f"0.0.0.0:{STATS_PORT}", source=(workload, "$(POD_NAMESPACE)"))
    return {
        "name": PROXY,
        "image": options.proxy_image,
        "command": ["envoy"],
        "ports": [{"name": "http-envoy-prom", "containerPort": STATS_PORT, "protocol": "TCP"}],  # Istio's template
        "args": ["--config-yaml", json.dumps(config, sort_keys=True, separators=(",", ":")),
                 "--service-node", _NODE, "--service-cluster", "$(POD_NAME).$(POD_NAMESPACE)",
                 "--log-level", "warning"],
        "env": _pod_env(),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": _unprivileged(),
        "volumeMounts": [{"name": "meshward-sds", "mountPath": _SDS_DIR}],
    }


def _agent(options: Options) -> dict[str, Any]:
    return {
        "name": AGENT,
        "image": options.agent_image,
        "command": ["meshward", "agent"],
        "args": [f"--node={_NODE}", f"--ca-address={options.ca_address}", f"--ca-root={_ROOT_DIR}/root-cert.pem",
                 f"--token-file={_TOKEN_DIR}/token", f"--sds-socket={_SDS_DIR}/socket",
                 f"--trust-domain={options.trust_domain}"],
        "env": _pod_env(),
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}},
        "securityContext": _unprivileged(),
        "volumeMounts": [{"name": "meshward-sds", "mountPath": _SDS_DIR},
                         {"name": "meshward-token", "mountPath": _TOKEN_DIR, "readOnly": True},
                         {"name": "meshward-ca-root", "mountPath": _ROOT_DIR, "readOnly": True}],
    }


def _pod_env() -> list[dict[str, Any]]:
    return [{"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}
            for name, path in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace"),
                               ("POD_IP", "status.podIP"))]


def _unprivileged() -> dict[str, Any]:
    return {"runAsUser": _PROXY_UID, "runAsGroup": _PROXY_UID, "runAsNonRoot": True,
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def _name(doc: MutableMapping[str, Any]) -> str:
    metadata = doc.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, MutableMapping) else ""
