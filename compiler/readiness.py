"""Endpoint readiness kept apart from the rest of a cluster's registry, so that a pod turning ready (or not) changes
only what Envoy's EDS says, not the revision that is compiled.

Why: in a cluster, readiness is what changes most (every rollout, every failing probe), and it decides one thing
only: whether an endpoint is sent (Pilot leaves not-ready endpoints out). Compiling policy again for it would cost
a full build per probe flip. So the cluster's documents are handed to the compiler without their readiness
(`split`: EndpointSlice endpoint conditions, a Pod's phase and conditions), the addresses that are not ready are
kept aside, and `without_unready` drops them from one proxy's load assignments when its snapshot is made. Two
cluster states that differ only in readiness give equal documents, so the reconciler reuses the build and only
the proxies whose endpoints changed get a new EDS response. A policy repository's own EndpointSlices keep their
conditions and are judged when translated (compiler.translate.services).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from compiler import model
from compiler.load import Document

_RUNNING = "Running"


def split(documents: Sequence[Document]) -> tuple[tuple[Document, ...], frozenset[str]]:
    """The documents without readiness, and the addresses that are not ready: an EndpointSlice endpoint whose
    `conditions.ready` is false (unset means ready, as Kubernetes says), a Pod that is not Running or whose Ready
    condition is not True."""
    unready: set[str] = set()
    out = []
    for doc in documents:
        data = doc.data if isinstance(doc.data, Mapping) else {}
        kind = data.get("kind")
        stripped = _slice(data, unready) if kind == "EndpointSlice" else _pod(data, unready) if kind == "Pod" else None
        out.append(doc if stripped is None else dataclasses.replace(doc, data=stripped))
    return tuple(out), frozenset(unready)


def _slice(data: Mapping[str, Any], unready: set[str]) -> dict[str, Any] | None:
    endpoints = data.get("endpoints")
    if not isinstance(endpoints, list):
        return None
    kept = []
    for ep in endpoints:
        if isinstance(ep, Mapping) and "conditions" in ep:
            conditions = ep["conditions"]
            if isinstance(conditions, Mapping) and conditions.get("ready") is False:
                unready.update(a for a in ep.get("addresses") or () if isinstance(a, str))
            ep = {k: v for k, v in ep.items() if k != "conditions"}
        kept.append(ep)
    return {**data, "endpoints": kept}


def _pod(data: Mapping[str, Any], unready: set[str]) -> dict[str, Any] | None:
    status = data.get("status")
    if not isinstance(status, Mapping):
        return None
    conditions = status.get("conditions")
    ready = status.get("phase") == _RUNNING and isinstance(conditions, list) and any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    if not ready:
        unready.update(_pod_ips(status))
    return {**data, "status": {k: v for k, v in status.items() if k not in ("phase", "conditions")}}


def _pod_ips(status: Mapping[str, Any]) -> set[str]:
    found = {status["podIP"]} if isinstance(status.get("podIP"), str) else set()
    found.update(p["ip"] for p in status.get("podIPs") or () if isinstance(p, Mapping) and isinstance(p.get("ip"), str))
    return found


def without_unready(cfg: model.ProxyConfig, unready: frozenset[str]) -> model.ProxyConfig:
    """The proxy's config without the endpoints at `unready` addresses (the same object when none is there)."""
    if not unready:
        return cfg
    changed = False
    assignments = []
    for la in cfg.load_assignments:
        kept = tuple(e for e in la.endpoints if e.address not in unready)
        if len(kept) != len(la.endpoints):
            changed = True
            la = dataclasses.replace(la, endpoints=kept)
        assignments.append(la)
    return dataclasses.replace(cfg, load_assignments=tuple(assignments)) if changed else cfg
