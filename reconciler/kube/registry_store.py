"""The registry's in-memory copy of the cluster: manifest documents by (kind, namespace, name), and what of an API
object a manifest keeps.

Kept apart from the watch loops so that what "changed" means is in one place: every write says whether the stored
content is different, and only then does the registry announce a change (a watch that replays objects we already
have, or a status-only update, costs nothing downstream).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

Key = tuple[str, str, str]  # (kind, namespace, name)

# kubectl's copy of the previous apply: not part of the object's meaning, and as big as the object itself.
_DROPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
_SERVER_FIELDS = frozenset({"apiVersion", "kind", "metadata", "status"})
# The Secret keys Istio reads a credential from (generic and kubernetes.io/tls layouts); others are not kept, so an
# unrelated key changing is not a change for us.
CREDENTIAL_KEYS = frozenset({"cert", "key", "cacert", "tls.crt", "tls.key", "ca.crt"})


def manifest(kind: str, api_version: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A serialized API object as its manifest would read: no status, no server-managed metadata."""
    meta = obj.get("metadata") or {}
    out_meta: dict[str, Any] = {"name": meta.get("name", "")}
    if meta.get("namespace"):
        out_meta["namespace"] = meta["namespace"]
    if meta.get("labels"):
        out_meta["labels"] = dict(meta["labels"])
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _DROPPED_ANNOTATIONS}
    if annotations:
        out_meta["annotations"] = annotations
    doc: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": out_meta}
    doc.update((k, v) for k, v in obj.items() if k not in _SERVER_FIELDS)
    if kind == "EndpointSlice":
        doc.setdefault("endpoints", [])  # the API sends null for "no endpoints"; the field is required
    if kind == "Secret":
        doc["data"] = {k: v for k, v in (obj.get("data") or {}).items() if k in CREDENTIAL_KEYS}
    if kind == "Pod":
        doc.update(_pod(obj))
    if kind == "Namespace":
        doc.pop("spec", None)  # finalizers: a namespace is its name and labels to the mesh
    return doc


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    """What the mesh reads of a Pod (compiler.api.workloads): its service account, named container ports, host
    network, IPs, phase and readiness. The rest (images, volumes, restart counts, probe times) changes often and
    means nothing to a proxy, so it is not kept and its changes are not changes for us."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = [{"name": c.get("name"), "ports": [
        {k: p[k] for k in ("name", "containerPort", "protocol") if p.get(k) is not None} for p in c.get("ports") or ()]}
        for c in spec.get("containers") or ()]
    kept_spec = {k: spec[k] for k in ("serviceAccountName", "hostNetwork") if spec.get(k) is not None}
    ready = [{"type": c.get("type"), "status": c.get("status")} for c in status.get("conditions") or ()
             if c.get("type") == "Ready"]
    kept_status = {k: status[k] for k in ("phase", "podIP", "podIPs") if status.get(k)}
    return {"spec": {**kept_spec, "containers": containers}, "status": {**kept_status, "conditions": ready}}


def source_name(doc: dict[str, Any]) -> str:
    """The file name a registry document is reported under in diagnostics: `k8s:Service/ns/name`."""
    meta = doc.get("metadata") or {}
    return f"k8s:{doc.get('kind')}/{meta.get('namespace', '')}/{meta.get('name', '')}"


class Store:
    """Thread-safe; readers get deep copies, so nothing they do can alter the registry's view."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._docs: dict[Key, dict[str, Any]] = {}

    def put(self, key: Key, doc: dict[str, Any]) -> bool:
        with self._lock:
            if self._docs.get(key) == doc:
                return False
            self._docs[key] = doc
            return True

    def remove(self, key: Key) -> bool:
        with self._lock:
            return self._docs.pop(key, None) is not None

    def replace_kind(self, kind: str, docs: dict[Key, dict[str, Any]]) -> bool:
        with self._lock:
            old = {k: v for k, v in self._docs.items() if k[0] == kind}
            if old == docs:
                return False
            for key in old:
                del self._docs[key]
            self._docs.update(docs)
            return True

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for k in self._docs if k[0] == kind)

    def snapshot(self, kinds: frozenset[str] | None = None) -> list[tuple[Key, dict[str, Any]]]:
        """Sorted (key, copy of document) pairs, of `kinds` only when given."""
        with self._lock:
            items = sorted((k, v) for k, v in self._docs.items() if kinds is None or k[0] in kinds)
            return [(key, copy.deepcopy(doc)) for key, doc in items]
