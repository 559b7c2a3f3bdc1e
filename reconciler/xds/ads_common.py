"""Pieces both ADS protocol variants (state of the world and incremental) share.

- `set_version` (meshxds.snapshot's): the version_info of a set of resources, a content hash, so that a
  response is re-sent only when what it carries changed (xds_protocol.rst, "When to send an update"). For a whole
  type it equals `Snapshot.versions[type_url]`.
- `eds_names`: the ClusterLoadAssignment names a set of clusters depends on, for the rule "after a cluster is added
  or changed, (re)send its endpoints" (xds_protocol.rst, "Resource warming": a cluster stays warming until it gets
  an EDS response, even when the endpoints did not change).
- `AckTracker`: per type ACK/NACK bookkeeping (xds_protocol.rst, "ACK/NACK and resource type instance version").
- `Encoder`: the wire bytes of a DiscoveryResponse / DeltaDiscoveryResponse, written by concatenating protobuf
  fields around each resource's cached serialization (`XdsResource.serialized`). Building `Any` messages and
  serializing the response would copy every resource twice more per proxy; this copies it once, into the
  response, and is byte-identical to protobuf's deterministic serialization (tests/ads check it). The server
  registers an identity response serializer, so gRPC sends these bytes as they are. One encoder per ADS server,
  shared by its streams: its caches live as long as the server.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import time
from collections.abc import Collection, Iterable, Mapping

from meshxds import type_urls, wire
from meshxds.snapshot import (
    XdsResource,
    set_version,  # the snapshot's per-type recipe, so the two always agree
)
from reconciler.xds import ads_status
from reconciler.xds.ads_status import AdsObserver, NackInfo, SyncState, TypeStatus

# Types for which an empty first request (or "*") means "everything for this proxy" (xds_protocol.rst, "How the
# client specifies what resources to return").
WILDCARD_TYPES = frozenset({type_urls.LISTENER, type_urls.CLUSTER})
KNOWN_TYPES = frozenset(type_urls.ORDER)
NACK_NAMES = 5  # resource names a NACK report repeats from the rejected response


def known_version(known: Mapping[str, str], current: Mapping[str, XdsResource], type_version: str) -> str:
    """`set_version(known)`, without hashing when the proxy holds exactly the current resources of the type
    (the common case), whose version the snapshot has already computed (`type_version`)."""
    if len(known) == len(current) and all((res := current.get(n)) is not None and res.version == v
                                          for n, v in known.items()):
        return type_version
    return set_version(known)


def versions_of(resources: Mapping[str, XdsResource]) -> dict[str, str]:
    return {name: res.version for name, res in resources.items()}


def eds_names(clusters: Iterable[XdsResource]) -> set[str]:
    """EDS resource names of the EDS clusters among `clusters` (service_name when set, else the cluster name)."""
    return {res.refs.endpoints for res in clusters if res.refs.endpoints}




class AckTracker:
    """What was last sent for one type on one stream and what the proxy said about it."""

    def __init__(self, type_url: str, observer: AdsObserver):
        self.type_url = type_url
        self._observer = observer
        self.sent_version = ""
        self.sent_nonce = ""
        self.acked_version = ""
        self.last_nack: NackInfo | None = None
        self.nacked = False       # the latest response of this type was rejected
        self.awaiting = False     # a response is in flight (neither ACKed nor NACKed yet)

        self.published_at: float | None = None  # time.monotonic() of the publish the in-flight response carries
        self._sent_names: tuple[str, ...] = ()  # the first names of the in-flight response, for a NACK report
        self._sent_count = 0

    def sent(self, version: str, nonce: str, published_at: float | None = None,
             names: Collection[str] = ()) -> None:
        self.sent_version, self.sent_nonce, self.awaiting = version, nonce, True
        self.published_at = published_at
        self._sent_names, self._sent_count = tuple(itertools.islice(names, NACK_NAMES)), len(names)

    def is_stale(self, response_nonce: str) -> bool:
        """A request answering an older response; xds_protocol.rst "Resource updates": ignore stale nonces.
        A nonce before anything was sent on this stream (one from a previous stream) is not stale, just unknown."""
        return bool(response_nonce) and bool(self.sent_nonce) and response_nonce != self.sent_nonce

    def answer(self, response_nonce: str, error_message: str | None) -> None:
        """Record the ACK (`error_message` None) or NACK of the response carrying `response_nonce`."""
        if not response_nonce or response_nonce != self.sent_nonce or not self.awaiting:
            return
        self.awaiting = False
        if error_message is None:
            self.acked_version, self.nacked = self.sent_version, False
            self._observer.on_ack(self.type_url)
            if self.published_at is not None:
                ads_status.report_timing(self._observer, ads_status.Timing.ACK, self.type_url,
                                         time.monotonic() - self.published_at)
        else:
            self.last_nack = NackInfo(self.sent_version, response_nonce, error_message, self._sent_names,
                                      self._sent_count)
            self.nacked = True
            self._observer.on_nack(self.type_url)

    def status(self, pending: bool) -> TypeStatus:
        if self.awaiting or pending:
            state = SyncState.STALE
        elif self.nacked:
            state = SyncState.NACKED
        else:
            state = SyncState.SYNCED
        return TypeStatus(self.type_url, self.sent_version, self.acked_version, self.last_nack, state)


# ---- wire format ------------------------------------------------------------------------------------------------
# Field numbers from envoy/service/discovery/v3/discovery.proto and google/protobuf/any.proto; a length-delimited
# field's tag is (number << 3) | 2. Fields are written in field-number order, as deterministic serialization does.

def _field(number: int, data: bytes) -> bytes:
    """An optional string/bytes field: absent when empty, as proto3 writes it."""
    return wire.length_delimited(number, data) if data else b""


class _Bodies:
    """SotW response bodies (the encoded resources) by (type URL, version): proxies that are sent the same set of
    resources, as every proxy of a namespace is for its routes and endpoints, share one encoding. Bounded LRU."""

    def __init__(self, max_bytes: int) -> None:
        self._items: collections.OrderedDict[tuple[str, str], bytes] = collections.OrderedDict()
        self._bytes, self._max = 0, max_bytes

    def get(self, key: tuple[str, str]) -> bytes | None:
        body = self._items.get(key)
        if body is not None:
            self._items.move_to_end(key)
        return body

    def put(self, key: tuple[str, str], body: bytes) -> None:
        if len(body) > self._max // 2 or key in self._items:
            return
        self._items[key] = body
        self._bytes += len(body)
        while self._bytes > self._max:
            _, old = self._items.popitem(last=False)
            self._bytes -= len(old)


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    """An encoded response: `data` is what goes on the wire; the rest is for bookkeeping and metrics."""

    type_url: str
    nonce: str
    version: str
    data: bytes
    resources: int

    def ByteSize(self) -> int:
        return len(self.data)


class Encoder:
    """Writes responses, sharing what proxies are sent alike: SotW bodies by (type URL, version), up to
    `body_bytes`, and the head of each `Any` by (type URL, value length)."""

    def __init__(self, body_bytes: int = 64 << 20, max_any_heads: int = 100_000) -> None:
        self._bodies = _Bodies(body_bytes)
        self._any_heads: dict[tuple[bytes, int], tuple[bytes, int]] = {}
        self._max_any_heads = max_any_heads

    def sotw_response(self, version: str, type_url: str, nonce: str,
                      resources: Collection[XdsResource]) -> Response:
        """DiscoveryResponse{version_info=1, resources=2 (Any), type_url=4, nonce=5}. `version` must be the content
        hash of `resources` (`set_version`): the encoded resources are shared by that key."""
        url = type_url.encode()
        body = self._bodies.get((type_url, version))
        if body is None:
            parts: list[bytes] = []
            for res in resources:
                head, size = self._any_parts(url, res.serialized)
                parts += (b"\x12", wire.varint(size), head, res.serialized)
            body = b"".join(parts)
            self._bodies.put((type_url, version), body)
        data = b"".join((_field(1, version.encode()), body, _field(4, url), _field(5, nonce.encode())))
        return Response(type_url, nonce, version, data, len(resources))

    def delta_response(self, version: str, type_url: str, nonce: str, resources: Iterable[XdsResource],
                       removed: Iterable[str]) -> Response:
        """DeltaDiscoveryResponse{system_version_info=1, resources=2 (Resource{version=1, resource=2 (Any),
        name=3}), type_url=4, nonce=5, removed_resources=6}."""
        url = type_url.encode()
        parts = [_field(1, version.encode())]
        count = 0
        for res in resources:
            head, size = self._any_parts(url, res.serialized)
            res_version, name = _field(1, res.version.encode()), _field(3, res.name.encode())
            inner = b"\x12" + wire.varint(size)
            total = len(res_version) + len(inner) + size + len(name)
            parts += (b"\x12", wire.varint(total), res_version, inner, head, res.serialized, name)
            count += 1
        parts += (_field(4, url), _field(5, nonce.encode()))
        parts += [_field(6, name.encode()) or b"\x32\x00" for name in removed]
        return Response(type_url, nonce, version, b"".join(parts), count)

    def _any_parts(self, type_url: bytes, value: bytes) -> tuple[bytes, int]:
        """The bytes of an `Any` before its value, and the Any's full length (they depend on the value's length
        only)."""
        key = (type_url, len(value))
        parts = self._any_heads.get(key)
        if parts is None:
            head = b"\x0a" + wire.varint(len(type_url)) + type_url
            if value:  # proto3: an empty bytes field is not written
                head += b"\x12" + wire.varint(len(value))
            if len(self._any_heads) > self._max_any_heads:
                self._any_heads.clear()
            parts = self._any_heads[key] = (head, len(head) + len(value))
        return parts
