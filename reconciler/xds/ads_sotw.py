"""State-of-the-world ADS (StreamAggregatedResources) as a pure state machine, one per stream.

`handle(request)` records what the proxy asked for and what it ACKed or NACKed; `next_response(snapshot)` says what
to send next, computed from the current snapshot only when the stream is ready to write. Nothing is queued: at most
one response is being written per stream, and whatever changed meanwhile is coalesced into the next one.

Protocol rules implemented (envoyproxy/envoy api/xds_protocol.rst, sections quoted in the comments):
- per type version_info (a content hash of the resources sent) and a nonce increasing over the stream;
- ACK vs NACK by the presence of `error_detail`; a NACKed version is parked: since versions are content hashes,
  the same content has the same version and is not sent again until the config changes;
- requests carrying a stale nonce are ignored;
- wildcard for LDS/CDS (empty first request, or "*"); other types get exactly the named resources that exist,
  answered at once (never held back waiting for a superset of names);
- make-before-break order: secrets, clusters, endpoints, listeners, routes; clusters that disappeared are kept in
  the CDS response until everything else is sent and ACKed, then removed;
- after a cluster is added or changed, its endpoints are re-sent even when unchanged.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import sys
from collections.abc import Mapping

from envoy.service.discovery.v3 import discovery_pb2

from meshxds import type_urls
from meshxds.snapshot import Snapshot, XdsResource, set_version
from reconciler.xds import ads_common
from reconciler.xds.ads_status import AdsObserver, TypeStatus

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _TypeState:
    tracker: ads_common.AckTracker
    requested: bool = False       # the proxy asked for this type on this stream
    wildcard: bool = False
    names: frozenset[str] = frozenset()
    must_answer: bool = False     # a request needs a response even if nothing changed
    sent: Mapping[str, XdsResource] = dataclasses.field(default_factory=dict)
    force: set[str] = dataclasses.field(default_factory=set)  # EDS: resend these even if unchanged


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    type_url: str
    resources: Mapping[str, XdsResource]
    version: str


class SotwSession:
    mode = "sotw"

    def __init__(self, observer: AdsObserver, encoder: ads_common.Encoder):
        self._encoder = encoder
        self._types = {t: _TypeState(ads_common.AckTracker(t, observer)) for t in type_urls.ORDER}
        self._nonces = itertools.count(1)

    def handle(self, request: discovery_pb2.DiscoveryRequest) -> None:
        state = self._types.get(request.type_url)
        if state is None:
            # Unknown type: answer nothing for it, keep the stream.
            log.warning("ignoring request for unsupported type %r", request.type_url)
            return
        if state.tracker.is_stale(request.response_nonce):
            # "Resource updates": the server should not respond to a request with a stale nonce; the proxy's
            # latest request (ACK of the newest response) supersedes it.
            log.debug("stale nonce %s for %s", request.response_nonce, request.type_url)
            return
        error = request.error_detail.message if request.HasField("error_detail") else None
        state.tracker.answer(request.response_nonce, error)
        # Names interned: thousands of streams naming the same resources then hold one string each.
        self._subscribe(state, frozenset(map(sys.intern, request.resource_names)), first=not state.requested)
        if not state.requested or not request.response_nonce:
            # First request of the type on this stream (a reconnect gets everything once), or a fresh request
            # that answers no response: "Basic Protocol Overview" says the server answers it.
            state.must_answer = True
        state.requested = True

    def subscribed(self) -> int:
        """Resource names this stream asked for, all types together (`ads_guard` caps it)."""
        return sum(len(s.names) for s in self._types.values())

    def _subscribe(self, state: _TypeState, names: frozenset[str], *, first: bool) -> None:
        """"How the client specifies what resources to return": wildcard (LDS/CDS only) is an empty first request
        or "*", and a stream never leaves it; otherwise the names replace the previous ones."""
        wildcard_type = state.tracker.type_url in ads_common.WILDCARD_TYPES
        if wildcard_type and (state.wildcard or "*" in names or (first and not names)):
            state.wildcard = True
            return
        if names != state.names:
            state.names = names
            state.must_answer = True  # newly requested resources must be (re)sent even if unchanged

    def next_response(self, snapshot: Snapshot, published_at: float | None = None) -> ads_common.Response | None:
        """The next response to send in make-before-break order, or None when the proxy is up to date.
        `published_at` (time.monotonic() of the publish that made `snapshot`) is kept to time the ACK."""
        for type_url in type_urls.ORDER:
            plan = self._plan(type_url, snapshot, final=False)
            if plan is not None:
                return self._commit(plan, published_at)
        if not any(s.tracker.awaiting for s in self._types.values()):
            # "Eventual consistency considerations": stale clusters are removed last, once all else is ACKed.
            plan = self._plan(type_urls.CLUSTER, snapshot, final=True)
            if plan is not None:
                return self._commit(plan, published_at)
        return None

    def _desired(self, state: _TypeState, snapshot: Snapshot, *,
                 keep_removed: bool) -> Mapping[str, XdsResource]:
        """What to send, sorted by name. The snapshot's own (shared, sorted) table when that is all of it, so that
        thousands of streams remember what they sent without a copy each."""
        current = snapshot.get(state.tracker.type_url)
        if state.wildcard or state.names >= current.keys():
            desired: Mapping[str, XdsResource] = current
        else:
            desired = {name: current[name] for name in sorted(state.names) if name in current}
        if keep_removed and not state.sent.keys() <= current.keys():
            merged = dict(desired)
            for name, res in state.sent.items():
                merged.setdefault(name, res)
            desired = dict(sorted(merged.items()))
        return desired

    def _plan(self, type_url: str, snapshot: Snapshot, *, final: bool) -> _Plan | None:
        state = self._types[type_url]
        if not state.requested:
            return None
        desired = self._desired(state, snapshot, keep_removed=type_url == type_urls.CLUSTER and not final)
        current = snapshot.get(type_url)
        if len(desired) == len(current) and desired.keys() == current.keys():
            version = snapshot.versions[type_url]  # the whole type: the snapshot hashed it already
        else:
            version = set_version(ads_common.versions_of(desired))
        forced = state.must_answer or bool(state.force & desired.keys())
        # "When to send an update": only when what the response carries changed. A NACKed version equals
        # sent_version, so it stays parked until the config changes.
        if version == state.tracker.sent_version and not forced:
            return None
        return _Plan(type_url, desired, version)

    def _commit(self, plan: _Plan, published_at: float | None) -> ads_common.Response:
        state = self._types[plan.type_url]
        if plan.type_url == type_urls.CLUSTER:
            self._force_endpoints_of(state.sent, plan.resources)
        elif plan.type_url == type_urls.ENDPOINT:
            state.force = state.force - plan.resources.keys()  # a new set: a drained one keeps its size
        nonce = str(next(self._nonces))
        state.sent, state.must_answer = plan.resources, False
        state.tracker.sent(plan.version, nonce, published_at, plan.resources.keys())
        return self._encoder.sotw_response(plan.version, plan.type_url, nonce, plan.resources.values())

    def _force_endpoints_of(self, before: Mapping[str, XdsResource], after: Mapping[str, XdsResource]) -> None:
        """"Resource warming": an added or changed cluster warms until it gets an EDS response."""
        changed = [res for name, res in after.items() if name not in before or before[name].version != res.version]
        endpoints = self._types[type_urls.ENDPOINT]
        endpoints.force = (endpoints.force | ads_common.eds_names(changed)) & ads_common.eds_names(after.values())

    def status(self, snapshot: Snapshot | None) -> dict[str, TypeStatus]:
        return {t: s.tracker.status(snapshot is not None and self._plan(t, snapshot, final=False) is not None)
                for t, s in self._types.items() if s.requested}
