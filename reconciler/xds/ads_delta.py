"""Incremental ADS (DeltaAggregatedResources) as a pure state machine, one per stream.

Same shape as `ads_sotw`: `handle(request)` then `next_response(snapshot)`, computed lazily so nothing queues up.
The session remembers, per type, the version of every resource the proxy has (`known`), and sends only what
differs. Rules (envoyproxy/envoy api/xds_protocol.rst, "Incremental xDS" and the sections quoted below):
- `initial_resource_versions` of the first request of a type seeds `known`: on reconnect the proxy is not sent what
  it already has, and is told (`removed_resources`) about what it has that no longer exists;
- "Subscribing to Resources": a subscribed name is sent even if the proxy seems to have it (except names covered by
  `initial_resource_versions` of the first request, which is exactly what they are for);
- "Unsubscribing from Resources": phantom unsubscriptions are ignored;
- wildcard for LDS/CDS: empty first subscription or "*";
- a NACK leaves `known` as sent, so rejected resources are parked until they change;
- make-before-break: types in `type_urls.ORDER`, removed clusters last once everything else is ACKed, and the
  endpoints of added or changed clusters are re-sent ("Resource warming").
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import sys

from envoy.service.discovery.v3 import discovery_pb2

from meshxds import type_urls
from meshxds.snapshot import Snapshot, XdsResource
from reconciler.xds import ads_common
from reconciler.xds.ads_status import AdsObserver, TypeStatus

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _TypeState:
    tracker: ads_common.AckTracker
    requested: bool = False
    wildcard: bool = False
    must_answer: bool = False
    names: set[str] = dataclasses.field(default_factory=set)        # explicit subscriptions
    known: dict[str, str] = dataclasses.field(default_factory=dict)  # what the proxy has: name -> version
    force: set[str] = dataclasses.field(default_factory=set)        # send even if known at the same version


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    type_url: str
    upserts: dict[str, XdsResource]
    removed: list[str]


class DeltaSession:
    mode = "delta"

    def __init__(self, observer: AdsObserver, encoder: ads_common.Encoder):
        self._encoder = encoder
        self._types = {t: _TypeState(ads_common.AckTracker(t, observer)) for t in type_urls.ORDER}
        self._nonces = itertools.count(1)

    def handle(self, request: discovery_pb2.DeltaDiscoveryRequest) -> None:
        state = self._types.get(request.type_url)
        if state is None:
            log.warning("ignoring delta request for unsupported type %r", request.type_url)
            return
        if request.response_nonce:
            # Subscriptions below stand on their own; the nonce only pairs this request with a response.
            error = request.error_detail.message if request.HasField("error_detail") else None
            if not state.tracker.is_stale(request.response_nonce):
                state.tracker.answer(request.response_nonce, error)
        first = not state.requested
        if first:
            state.requested = state.must_answer = True
            state.known = {sys.intern(n): v for n, v in request.initial_resource_versions.items()}
            is_wildcard_type = request.type_url in ads_common.WILDCARD_TYPES
            state.wildcard = is_wildcard_type and not request.resource_names_subscribe
        # Names interned: thousands of streams naming the same resources then hold one string each.
        self._subscribe(state, [sys.intern(n) for n in request.resource_names_subscribe], first=first)
        self._unsubscribe(state, list(request.resource_names_unsubscribe))

    def subscribed(self) -> int:
        """Resource names this stream holds state for, all types together (`ads_guard` caps it): per type the
        larger of its subscriptions and the versions it says it has, so that the count stays O(types)."""
        return sum(max(len(s.names), len(s.known)) for s in self._types.values())

    def _subscribe(self, state: _TypeState, names: list[str], *, first: bool) -> None:
        for name in names:
            if name == "*":
                state.wildcard = state.tracker.type_url in ads_common.WILDCARD_TYPES
                continue
            state.names.add(name)
            if not (first and name in state.known):
                state.force.add(name)

    def _unsubscribe(self, state: _TypeState, names: list[str]) -> None:
        for name in names:
            if name == "*":
                state.wildcard = False
                state.known = {n: v for n, v in state.known.items() if n in state.names}
                continue
            state.names.discard(name)
            state.force.discard(name)
            if not state.wildcard:  # under wildcard the resource stays covered
                state.known.pop(name, None)

    def next_response(self, snapshot: Snapshot, published_at: float | None = None) -> ads_common.Response | None:
        for type_url in type_urls.ORDER:
            plan = self._plan(type_url, snapshot, final=False)
            if plan is not None:
                return self._commit(plan, snapshot, published_at)
        if not any(s.tracker.awaiting for s in self._types.values()):
            plan = self._plan(type_urls.CLUSTER, snapshot, final=True)
            if plan is not None:
                return self._commit(plan, snapshot, published_at)
        return None

    def _plan(self, type_url: str, snapshot: Snapshot, *, final: bool) -> _Plan | None:
        state = self._types[type_url]
        if not state.requested:
            return None
        current = snapshot.get(type_url)
        wanted = (set(current) if state.wildcard else set()) | state.names
        upserts = {n: current[n] for n in sorted(wanted)
                   if n in current and (n in state.force or state.known.get(n) != current[n].version)}
        removed = sorted(n for n in state.known if n not in current or n not in wanted)
        if type_url == type_urls.CLUSTER and not final:
            removed = []  # "Eventual consistency considerations": stale clusters are removed last
        if not upserts and not removed and not state.must_answer:
            return None
        return _Plan(type_url, upserts, removed)

    def _commit(self, plan: _Plan, snapshot: Snapshot, published_at: float | None) -> ads_common.Response:
        state = self._types[plan.type_url]
        if plan.type_url == type_urls.CLUSTER:
            self._force_endpoints_of(plan.upserts)
        for name, res in plan.upserts.items():
            state.known[name] = res.version
        for name in plan.removed:
            state.known.pop(name, None)
        state.force = state.force - plan.upserts.keys()  # a new set: a drained one keeps its size
        state.must_answer = False
        version = ads_common.known_version(state.known, snapshot.get(plan.type_url),
                                           snapshot.versions.get(plan.type_url, ""))
        nonce = str(next(self._nonces))
        state.tracker.sent(version, nonce, published_at, plan.upserts.keys())
        return self._encoder.delta_response(version, plan.type_url, nonce, plan.upserts.values(), plan.removed)

    def _force_endpoints_of(self, clusters: dict[str, XdsResource]) -> None:
        """"Resource warming": an added or changed cluster warms until it gets its endpoints."""
        endpoints = self._types[type_urls.ENDPOINT]
        endpoints.force |= ads_common.eds_names(clusters.values())
        endpoints.force = {n for n in endpoints.force if endpoints.wildcard or n in endpoints.names}

    def status(self, snapshot: Snapshot | None) -> dict[str, TypeStatus]:
        return {t: s.tracker.status(snapshot is not None and self._plan(t, snapshot, final=False) is not None)
                for t, s in self._types.items() if s.requested}
