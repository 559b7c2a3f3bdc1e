"""Which Service wins when the repository and the cluster both define it: the cluster's.

Why it is the compiler's: which documents make up the service registry is a compile decision, like every other
precedence rule, and it reads the documents' kind, namespace, name and labels, which only the compiler should
interpret. The reconciler hands `build.from_documents` the repository's documents and the cluster's; this module
decides.

Precedence (Istio's: the cluster is the source of truth for the service registry). A Service in the cluster replaces
the repository's Service of the same namespace and name, and the repository's EndpointSlices for that Service are
dropped (endpoints come from the cluster's slices only); an EndpointSlice, a Pod or a Namespace in the cluster also
replaces a repository one of the same name. Everything else in the repository (its other Services and slices, WorkloadEntries,
ServiceEntries, routing policy) is kept. Without cluster documents nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from compiler.kinds import SERVICE_NAME_LABEL
from compiler.load import Document

_REGISTRY_KINDS = ("Service", "EndpointSlice", "Pod", "Namespace")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _meta(doc: Document) -> tuple[str, str, str, Mapping[str, Any]]:
    data = _mapping(doc.data)
    meta = _mapping(data.get("metadata"))
    return (str(data.get("kind", "")), str(meta.get("namespace") or "default"), str(meta.get("name", "")),
            _mapping(meta.get("labels")))


def merge(repo: Sequence[Document], cluster: Sequence[Document]) -> tuple[list[Document], list[Document]]:
    """(documents to compile, repository documents shadowed by the cluster); see the module docstring."""
    if not cluster:
        return list(repo), []
    owned = {_meta(d)[:3] for d in cluster}
    services = {(ns, name) for kind, ns, name in owned if kind == "Service"}
    kept: list[Document] = []
    shadowed: list[Document] = []
    for doc in repo:
        kind, ns, name, labels = _meta(doc)
        replaced = kind in _REGISTRY_KINDS and (kind, ns, name) in owned
        orphaned = kind == "EndpointSlice" and (ns, str(labels.get(SERVICE_NAME_LABEL, ""))) in services
        (shadowed if replaced or orphaned else kept).append(doc)
    return [*kept, *cluster], shadowed


def describe(doc: Document) -> str:
    """A shadowed document as the reconciler reports it: `Kind namespace/name file:line`."""
    kind, ns, name, _ = _meta(doc)
    return f"{kind} {ns}/{name} {doc.file}:{doc.line}"
