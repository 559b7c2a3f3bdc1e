"""Pieces both ADS protocol variants (state of the world and incremental) share.

- `set_version`: the version_info of a set of resources, a content hash, so that a response is re-sent only when
  what it carries changed (xds_protocol.rst, "When to send an update"). For a whole type it equals
  `Snapshot.versions[type_url]`.
- `eds_names`: the ClusterLoadAssignment names a set of clusters depends on, for the rule "after a cluster is added
  or changed, (re)send its endpoints" (xds_protocol.rst, "Resource warming": a cluster stays warming until it gets
  an EDS response, even when the endpoints did not change).
- `AckTracker`: per type ACK/NACK bookkeeping (xds_protocol.rst, "ACK/NACK and resource type instance version").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from envoy.config.cluster.v3 import cluster_pb2
from google.protobuf.message import Message

from compiler.emit import type_urls
from compiler.emit.snapshot import XdsResource
from reconciler.ads_status import AdsObserver, NackInfo, SyncState, TypeStatus

# Types for which an empty first request (or "*") means "everything for this proxy" (xds_protocol.rst, "How the
# client specifies what resources to return").
WILDCARD_TYPES = frozenset({type_urls.LISTENER, type_urls.CLUSTER})
KNOWN_TYPES = frozenset(type_urls.ORDER)


def set_version(versions: Mapping[str, str]) -> str:
    """Content hash over (name, version) pairs; same recipe as the snapshot's per-type version."""
    digest = hashlib.sha256()
    for name in sorted(versions):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(versions[name].encode())
    return digest.hexdigest()[:16]


def versions_of(resources: Mapping[str, XdsResource]) -> dict[str, str]:
    return {name: res.version for name, res in resources.items()}


def eds_names(clusters: Iterable[XdsResource]) -> set[str]:
    """EDS resource names of the EDS clusters among `clusters` (service_name when set, else the cluster name)."""
    names: set[str] = set()
    for res in clusters:
        msg: Message = res.message
        if isinstance(msg, cluster_pb2.Cluster) and msg.type == cluster_pb2.Cluster.EDS:
            names.add(msg.eds_cluster_config.service_name or msg.name)
    return names


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

    def sent(self, version: str, nonce: str) -> None:
        self.sent_version, self.sent_nonce, self.awaiting = version, nonce, True

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
        else:
            self.last_nack = NackInfo(self.sent_version, response_nonce, error_message)
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
