"""What the ADS server tells the rest of meshward: per-proxy sync status and counter hooks.

These are plain values and a protocol, so the admin module can render status pages and map the hooks to Prometheus
without the ADS server importing prometheus_client (and without the admin module importing gRPC).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, Protocol


class SyncState(enum.StrEnum):
    """Stable strings that dashboards group by (like Argo's Synced / OutOfSync)."""

    SYNCED = "SYNCED"    # everything the proxy should have was sent and ACKed
    STALE = "STALE"      # a response is in flight, or the proxy has not been sent its current config yet
    NACKED = "NACKED"    # the latest response of some type was rejected; that version is parked
    UNKNOWN = "UNKNOWN"  # the reconciler does not know this proxy (resolve raised LookupError)


@dataclasses.dataclass(frozen=True, slots=True)
class NackInfo:
    version: str   # the version the proxy rejected (what we sent), not the one it kept
    nonce: str
    message: str   # error_detail.message as Envoy wrote it
    # The first names the rejected response carried (Envoy's message names the one it refused, usually) and how
    # many it carried in all: enough to find the culprit without holding every name of every response.
    resources: tuple[str, ...] = ()
    resource_count: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class TypeStatus:
    type_url: str
    sent_version: str
    acked_version: str
    last_nack: NackInfo | None
    state: SyncState


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyStatus:
    node_id: str
    stream_id: int
    mode: str                      # "sotw" or "delta"
    connected_since: float         # time.time() at connect
    snapshot_version: str | None   # what the cache holds for this proxy now (None: nothing yet)
    types: Mapping[str, TypeStatus]
    state: SyncState
    identity: str | None = None    # mTLS ADS: the SPIFFE ID the client's certificate proved (None: plain ADS)


def overall(states: list[SyncState]) -> SyncState:
    """A proxy is as bad as its worst type: NACKED beats STALE beats SYNCED."""
    for worst in (SyncState.UNKNOWN, SyncState.NACKED, SyncState.STALE):
        if worst in states:
            return worst
    return SyncState.SYNCED


class AdsObserver(Protocol):
    """Counter hooks, called on the event loop; keep them cheap and never raise."""

    def on_connect(self, node_id: str, mode: str) -> None: ...
    def on_disconnect(self, node_id: str, mode: str) -> None: ...
    def on_push(self, type_url: str, nbytes: int) -> None: ...
    def on_ack(self, type_url: str) -> None: ...
    def on_nack(self, type_url: str) -> None: ...


class Timing(enum.StrEnum):
    """Durations the ADS server measures, reported to observers that define `on_timing(kind, type_url, seconds)`."""

    PUSH = "push"      # publish of the snapshot -> response written to the stream
    ACK = "ack"        # publish of the snapshot -> the proxy's ACK of the response that carried it
    ENCODE = "encode"  # CPU time spent computing one response (planning plus encoding; no I/O)


def report_timing(observer: Any, kind: Timing, type_url: str, seconds: float) -> None:
    """`on_timing` is optional so observers written before it existed keep working."""
    hook = getattr(observer, "on_timing", None)
    if hook is not None:
        hook(kind, type_url, seconds)


class NullObserver:
    """The default observer: counts nothing."""

    def on_connect(self, node_id: str, mode: str) -> None:
        pass

    def on_disconnect(self, node_id: str, mode: str) -> None:
        pass

    def on_push(self, type_url: str, nbytes: int) -> None:
        pass

    def on_ack(self, type_url: str) -> None:
        pass

    def on_nack(self, type_url: str) -> None:
        pass
