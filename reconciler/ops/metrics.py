"""Prometheus metrics of the reconciler, in one registry owned by this process (not the global default one).

A private `CollectorRegistry` per `Metrics` keeps tests independent and keeps library metrics we did not choose out
of `/metrics` (the process collector, for RSS and CPU, is chosen).

Push latency, as the issue defines it, is `meshward_xds_ack_latency_seconds{type_url}`: from the publish that
produced a proxy's snapshot to that proxy's ACK of the response carrying it, per type.
`meshward_xds_push_latency_seconds` stops at the write. The GitOps loop updates the commit metrics directly; the snapshot cache / ADS server reports through
`XdsObserver`, so it needs no knowledge of Prometheus.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping, Sequence

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from reconciler.ops import status
from reconciler.xds.ads_status import Timing
from reconciler.xds.cache import PublishResult, SnapshotCache

# Compiles of a small repo take milliseconds, of a large one seconds.
_COMPILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_PUSH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_ENCODE_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5)


class _StampedCounter:
    """A counter that also records when it last moved (the loop calls `commits_seen.inc()`; the push benchmark
    wants the moment a commit was detected, to split detect from compile)."""

    def __init__(self, counter: Counter, stamp: Gauge) -> None:
        self.counter, self.stamp = counter, stamp

    def inc(self, amount: float = 1) -> None:
        self.counter.inc(amount)
        self.stamp.set_to_current_time()


class Metrics:
    """Every metric object of the reconciler, registered in `self.registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.commits_seen = _StampedCounter(
            Counter("meshward_commits_seen", "New commits fetched from the git source.", registry=r),
            Gauge("meshward_last_commit_seen_timestamp_seconds", "Unix time the newest commit was detected.",
                  registry=r))
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
        self.xds_ack_latency = Histogram("meshward_xds_ack_latency_seconds",
                                         "Time from publishing a revision to the proxy's ACK of it, by type URL.",
                                         ["type_url"], buckets=_PUSH_BUCKETS, registry=r)
        self.xds_encode_seconds = Histogram("meshward_xds_encode_seconds",
                                            "Time to compute and encode one xDS response, by type URL.",
                                            ["type_url"], buckets=_ENCODE_BUCKETS, registry=r)
        self.publish_seconds = Histogram("meshward_publish_seconds",
                                         "Time from publish to every connected proxy's snapshot resolved.",
                                         buckets=_COMPILE_BUCKETS + (60.0, 120.0, 300.0), registry=r)
        self.publish_started = Gauge("meshward_last_publish_started_timestamp_seconds",
                                     "Unix time the newest publish started (compile done).", registry=r)
        self.publish_finished = Gauge("meshward_last_publish_finished_timestamp_seconds",
                                      "Unix time the newest publish had resolved every connected proxy.", registry=r)
        self.snapshots = Gauge("meshward_snapshots", "Distinct snapshots held (identical ones are shared).",
                               registry=r)
        self.snapshot_resources = Gauge("meshward_snapshot_resources",
                                        "Distinct xDS resources held, each shared by every proxy that has it.",
                                        registry=r)
        self.snapshot_bytes = Gauge("meshward_snapshot_resource_bytes",
                                    "Serialized bytes of the distinct resources held.", registry=r)
        prometheus_client.ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total
        self.xds_acks = Counter("meshward_xds_acks", "ACKs received, by type URL.", ["type_url"], registry=r)
        self.xds_nacks = Counter("meshward_xds_nacks", "NACKs received, by type URL.", ["type_url"], registry=r)
        self.webhooks = Counter("meshward_webhook_requests", "Push webhook requests, by outcome.", ["result"],
                                registry=r)
        self.flagged = Gauge("meshward_flagged_findings",
                             "Flagged errors of the served revision (configs Pilot serves), by code.",
                             ["code", "istio_code"], registry=r)
        self.connected_proxies = Gauge("meshward_xds_connected_proxies", "Open ADS streams.", registry=r)
        self.xds_limited = Counter("meshward_xds_limited",
                                   "ADS clients over a limit (reconciler/xds/ads_guard.py), by limit.", ["limit"],
                                   registry=r)
        self.rejecting_proxies = Gauge("meshward_xds_rejecting_proxies",
                                       "Proxies rejecting (NACKing) the config they were last sent, by type URL.",
                                       ["type_url"], registry=r)
        self.drift = Gauge("meshward_drift_findings",
                           "Drift of the served commit against the live mesh (reconciler/ops/drift.py), by kind.",
                           ["kind"], registry=r)
        self._before_render: list[Callable[[], None]] = []
        self.set_result(status.SyncResult.PENDING)

    def before_render(self, hook: Callable[[], None]) -> None:
        """Call `hook` before each scrape: for figures read from live state (which proxies NACK right now)."""
        self._before_render.append(hook)

    def set_nacks(self, nacks: tuple[status.ProxyNack, ...]) -> None:
        self.rejecting_proxies.clear()
        for type_url in sorted({n.type_url for n in nacks}):
            self.rejecting_proxies.labels(type_url=type_url).set(len({n.node for n in nacks if n.type_url == type_url}))

    def set_drift(self, counts: Mapping[str, int]) -> None:
        """Findings by drift kind; every kind present (0 when in sync) once a drift was computed."""
        self.drift.clear()
        for kind, count in counts.items():
            self.drift.labels(kind=str(kind)).set(count)

    def set_result(self, result: status.SyncResult) -> None:
        for value in status.SyncResult:
            self.last_result.labels(result=str(value)).set(1 if value is result else 0)

    def applied(self, commit: status.CommitRef, at: float) -> None:
        self.commits_applied.inc()
        self.last_applied.info({"sha": commit.sha, "author": commit.author})
        self.last_applied_time.set(at)

    def set_flagged(self, codes: Sequence[tuple[str, str]]) -> None:
        """The served revision's flagged errors, as (meshward code, Istio code) pairs, counted by code."""
        self.flagged.clear()
        for (code, istio), count in collections.Counter(codes).items():
            self.flagged.labels(code=code, istio_code=istio).set(count)

    def rejected(self, result: status.SyncResult) -> None:
        self.commits_rejected.labels(result=str(result)).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        for hook in self._before_render:
            hook()
        return prometheus_client.generate_latest(self.registry)


CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST


class XdsObserver:
    """What the snapshot cache / ADS server calls on protocol events (`reconciler.xds.ads_status.AdsObserver`); it only
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

    def on_timing(self, kind: Timing, type_url: str, seconds: float) -> None:
        if kind is Timing.ACK:
            self._m.xds_ack_latency.labels(type_url=type_url).observe(seconds)
        elif kind is Timing.PUSH:
            self._m.xds_push_latency.observe(seconds)
        elif kind is Timing.ENCODE:
            self._m.xds_encode_seconds.labels(type_url=type_url).observe(seconds)

    def on_publish(self, result: PublishResult) -> None:
        m = self._m
        m.publish_started.set(result.started)
        m.publish_finished.set(result.finished)
        m.publish_seconds.observe(result.finished - result.started)

    def watch_cache(self, cache: SnapshotCache) -> None:
        """Read the cache's sharing figures at scrape time (`SnapshotCache.stats` is O(1))."""
        m = self._m
        m.snapshots.set_function(lambda: cache.stats()[0])
        m.snapshot_resources.set_function(lambda: cache.stats()[1])
        m.snapshot_bytes.set_function(lambda: cache.stats()[2])

    def on_nack(self, type_url: str) -> None:
        self._m.xds_nacks.labels(type_url=type_url).inc()

    def on_limit(self, limit: str) -> None:
        self._m.xds_limited.labels(limit=limit).inc()

    # node_id / mode are what the ADS server's `AdsObserver` protocol passes; the gauge does not need them.
    def on_connect(self, node_id: str = "", mode: str = "") -> None:
        self._m.connected_proxies.inc()

    def on_disconnect(self, node_id: str = "", mode: str = "") -> None:
        self._m.connected_proxies.dec()
