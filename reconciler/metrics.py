"""Prometheus metrics of the reconciler, in one registry owned by this process (not the global default one).

A private `CollectorRegistry` per `Metrics` keeps tests independent and keeps library metrics we did not choose out
of `/metrics`. The GitOps loop updates the commit metrics directly; the snapshot cache / ADS server reports through
`XdsObserver`, so it needs no knowledge of Prometheus.
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from reconciler import status

# Compiles of a small repo take milliseconds, of a large one seconds.
_COMPILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_PUSH_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric object of the reconciler, registered in `self.registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.commits_seen = Counter("meshward_commits_seen", "New commits fetched from the git source.", registry=r)
        self.commits_applied = Counter("meshward_commits_applied", "Commits compiled and published.", registry=r)
        self.commits_rejected = Counter("meshward_commits_rejected", "Commits not served, by result.",
                                        ["result"], registry=r)
        self.source_errors = Counter("meshward_source_errors", "Failed fetches of the git source, by kind.",
                                     ["kind"], registry=r)
        self.compile_seconds = Histogram("meshward_compile_seconds", "Time to compile one commit.",
                                         buckets=_COMPILE_BUCKETS, registry=r)
        self.last_applied = Info("meshward_last_applied_commit", "The commit proxies are being served.",
                                 registry=r)
        self.last_applied_time = Gauge("meshward_last_applied_timestamp_seconds",
                                       "Unix time the served commit was published.", registry=r)
        self.last_result = Gauge("meshward_sync_result", "1 for the result of the last reconcile, else 0.",
                                 ["result"], registry=r)
        self.xds_pushes = Counter("meshward_xds_pushes", "xDS responses sent, by type URL.", ["type_url"],
                                  registry=r)
        self.xds_push_bytes = Counter("meshward_xds_push_bytes", "Bytes of xDS responses sent, by type URL.",
                                      ["type_url"], registry=r)
        self.xds_push_latency = Histogram("meshward_xds_push_latency_seconds",
                                          "Time from publishing a revision to pushing it to a proxy.",
                                          buckets=_PUSH_BUCKETS, registry=r)
        self.xds_acks = Counter("meshward_xds_acks", "ACKs received, by type URL.", ["type_url"], registry=r)
        self.xds_nacks = Counter("meshward_xds_nacks", "NACKs received, by type URL.", ["type_url"], registry=r)
        self.webhooks = Counter("meshward_webhook_requests", "Push webhook requests, by outcome.", ["result"],
                                registry=r)
        self.connected_proxies = Gauge("meshward_xds_connected_proxies", "Open ADS streams.", registry=r)
        self.set_result(status.SyncResult.PENDING)

    def set_result(self, result: status.SyncResult) -> None:
        for value in status.SyncResult:
            self.last_result.labels(result=str(value)).set(1 if value is result else 0)

    def applied(self, commit: status.CommitRef, at: float) -> None:
        self.commits_applied.inc()
        self.last_applied.info({"sha": commit.sha, "author": commit.author})
        self.last_applied_time.set(at)

    def rejected(self, result: status.SyncResult) -> None:
        self.commits_rejected.labels(result=str(result)).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return prometheus_client.generate_latest(self.registry)


CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST


class XdsObserver:
    """What the snapshot cache / ADS server calls on protocol events (`reconciler.ads_status.AdsObserver`); it only
    updates metrics. Calls come from the event loop; prometheus-client metrics are thread-safe anyway."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def on_push(self, type_url: str, nbytes: int, latency_seconds: float | None = None) -> None:
        self._m.xds_pushes.labels(type_url=type_url).inc()
        self._m.xds_push_bytes.labels(type_url=type_url).inc(nbytes)
        if latency_seconds is not None:
            self._m.xds_push_latency.observe(latency_seconds)

    def on_ack(self, type_url: str) -> None:
        self._m.xds_acks.labels(type_url=type_url).inc()

    def on_nack(self, type_url: str) -> None:
        self._m.xds_nacks.labels(type_url=type_url).inc()

    # node_id / mode are what the ADS server's `AdsObserver` protocol passes; the gauge does not need them.
    def on_connect(self, node_id: str = "", mode: str = "") -> None:
        self._m.connected_proxies.inc()

    def on_disconnect(self, node_id: str = "", mode: str = "") -> None:
        self._m.connected_proxies.dec()
