"""Caps on what one ADS client can make the server hold, log or compute.

On plain ADS anything that reaches the port is a client; with `--xds-tls` a client is a workload certificate, still
one that could misbehave, and an identity asking for another namespace's proxies is refused here too. Measured against the uncapped
server: a delta client subscribing 3 million unknown names kept 314 MB resident; a 1 MB node id and 100,000
requests with unknown type URLs wrote 40 MB of log; a client re-requesting every 10 ms got 876 responses in 10 s.
Envoy needs none of that: one stream per proxy, a node id of a few hundred bytes, the names of the mesh it sees,
and a handful of responses per config change. So:

- a hard cap ends the stream with a gRPC status that says which cap and its value (RESOURCE_EXHAUSTED for counts,
  INVALID_ARGUMENT for a malformed node id), so the operator of a legitimate proxy that hits it knows what to raise;
- the response rate is a token bucket per stream: a stream past its burst waits for the next token, and everything
  it asked for meanwhile is coalesced into that one response (the sessions keep state, not a queue);
- every breach counts in `meshward_xds_limited_total{limit}` and is logged at most once per `LOG_EVERY` seconds per
  limit, with the number of breaches the log left out.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc

from reconciler.identity.spiffe import Identity
from reconciler.xds import ads_auth
from reconciler.xds.xds_node import NodeInfo

log = logging.getLogger(__name__)

LOG_EVERY = 10.0  # seconds between two log lines about the same limit


class Limit(enum.StrEnum):
    """The label of `meshward_xds_limited_total`; stable, dashboards group by it."""

    STREAMS_PER_PEER = "streams_per_peer"
    NODE_ID = "node_id"
    RESOURCE_NAMES = "resource_names"
    RESPONSE_RATE = "response_rate"      # not a refusal: the response waited for its token
    UNKNOWN_TYPE = "unknown_type"        # not a refusal: the request was ignored
    BAD_REQUEST = "bad_request"          # not a refusal: a request the session could not handle was ignored
    UNAUTHENTICATED = "unauthenticated"  # `--xds-tls`: a client certificate that names no identity of the mesh
    NAMESPACE = "namespace"              # `--xds-tls`: an identity asking for a node id of another namespace


@dataclasses.dataclass(frozen=True)
class ClientCaps:
    max_streams_per_peer: int = 128       # open streams from one client IP address (a node's or a NAT's pods)
    max_node_id_bytes: int = 1024         # Istio's node ids are about 100 bytes; Kubernetes names at most 253
    # Names one stream subscribes to, all types together (a delta stream counts per type the larger of its
    # subscriptions and the versions it says it holds). The whole 10,000-service benchmark mesh is 160,010.
    max_resource_names: int = 250_000
    responses_per_second: float = 10.0   # sustained, per stream
    response_burst: int = 50             # what a stream may get at once: a connect is about 5, a commit 1-5


class Refused(Exception):
    """A hard cap: the stream ends with `code` and `details`."""

    def __init__(self, limit: Limit, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.limit, self.code, self.details = limit, code, details


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved; a response spends one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._tokens, self._at = float(burst), clock()

    def wait(self) -> float:
        """Seconds until a token is there (0: now)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate

    def spend(self) -> None:
        self.wait()  # refill up to now first
        self._tokens -= 1


class Guard:
    """One per ADS server: the caps, the per-address stream counts, and the breach counter and log."""

    def __init__(self, caps: ClientCaps, observer: Any) -> None:
        self.caps = caps
        self._on_limit = getattr(observer, "on_limit", None)  # optional, like `on_timing`
        self._peers: dict[str, int] = {}
        self._last_log: dict[Limit, float] = {}
        self._suppressed: dict[Limit, int] = {}

    def breach(self, limit: Limit, message: str, *args: object, exc_info: bool = False) -> None:
        """Count a breach; log it unless this limit was logged less than LOG_EVERY seconds ago."""
        if self._on_limit is not None:
            self._on_limit(limit)
        now = time.monotonic()
        if now - self._last_log.get(limit, -LOG_EVERY) < LOG_EVERY:
            self._suppressed[limit] = self._suppressed.get(limit, 0) + 1
            return
        self._last_log[limit] = now
        left_out = self._suppressed.pop(limit, 0)
        log.warning(message + (f" ({left_out} more since the last such line)" if left_out else ""), *args,
                    exc_info=exc_info)

    def refuse(self, limit: Limit, code: grpc.StatusCode, details: str) -> Refused:
        self.breach(limit, "refused an ADS stream: %s", details)
        return Refused(limit, code, details)

    def open_stream(self, peer: str) -> None:
        """Count a stream from `peer` (a host), or raise Refused past the cap."""
        count = self._peers.get(peer, 0)
        if count >= self.caps.max_streams_per_peer:
            raise self.refuse(Limit.STREAMS_PER_PEER, grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"{peer} has {count} ADS streams open; the limit is {self.caps.max_streams_per_peer} "
                              "(serve --max-streams-per-peer)")
        self._peers[peer] = count + 1

    def close_stream(self, peer: str) -> None:
        count = self._peers.pop(peer, 1) - 1
        if count:
            self._peers[peer] = count

    def check_node_id(self, node_id: str) -> None:
        size = len(node_id.encode())
        if size > self.caps.max_node_id_bytes:
            raise self.refuse(Limit.NODE_ID, grpc.StatusCode.INVALID_ARGUMENT,
                              f"node.id is {size} bytes; the limit is {self.caps.max_node_id_bytes} "
                              "(serve --max-node-id-bytes)")

    def check_names(self, node_id: str, subscribed: int) -> None:
        if subscribed > self.caps.max_resource_names:
            raise self.refuse(Limit.RESOURCE_NAMES, grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"{node_id} subscribed to {subscribed} resource names; the limit is "
                              f"{self.caps.max_resource_names} (serve --max-resource-names)")

    def authenticate(self, auth_context: Mapping[str, Sequence[bytes]], trust_domain: str) -> Identity:
        """The SPIFFE identity of an mTLS stream's client, or Refused (UNAUTHENTICATED)."""
        try:
            return ads_auth.peer_identity(auth_context, trust_domain)
        except ads_auth.Unauthenticated as err:
            raise self.refuse(Limit.UNAUTHENTICATED, grpc.StatusCode.UNAUTHENTICATED, str(err)) from None

    def authorize(self, identity: Identity, node: NodeInfo) -> None:
        """Refused (PERMISSION_DENIED) unless `identity` may be sent `node`'s config."""
        try:
            ads_auth.authorize(identity, node)
        except ads_auth.Denied as err:
            raise self.refuse(Limit.NAMESPACE, grpc.StatusCode.PERMISSION_DENIED, str(err)) from None

    def bucket(self) -> TokenBucket:
        return TokenBucket(self.caps.responses_per_second, self.caps.response_burst)


def peer_host(peer: str) -> str:
    """The address of a grpc.aio peer string: `ipv4:127.0.0.1:5000` -> `127.0.0.1`, `ipv6:[::1]:5000` -> `::1`."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return peer  # unix sockets and the like: one bucket per path
    return rest.rpartition(":")[0].strip("[]")
