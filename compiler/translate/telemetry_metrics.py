"""What a proxy's Prometheus metrics leave out: Telemetry `metrics` merged as Pilot merges them
(pilot/pkg/model/telemetry.go mergeMetrics), for the proxy's calling side.

Pilot turns the merged overrides into the configuration of Istio's `istio.stats` extension; meshward's metrics are
Envoy's own upstream cluster stats with Istio's labels (compiler.emit.prometheus_stats), which Envoy configures in
its bootstrap only. So the result is a `model.Metrics`: the Istio metrics whose stats are not created, the labels
that are not extracted, and the flush interval. Only the calling side (`mode` CLIENT, or CLIENT_AND_SERVER) is
read: the stats carry Istio's labels on outbound clusters only (`reporter="source"`), so a SERVER override has
nothing to act on. What upstream Envoy cannot do (UPSERT of a label from a CEL expression, custom metrics, removing
a label from one metric but not the others: Envoy extracts a label from every stat's name alike) is warned at its
line by compiler.validate.telemetry; here, a label counts as removed only when it is removed from every metric.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from compiler import model, units
from compiler.api.mesh_config import MeshConfig
from compiler.api.telemetry import Metrics, MetricsOverrides
from compiler.translate import telemetry
from compiler.translate.mesh import Mesh
from compiler.validate import envoy_limits

# tpb.MetricSelector_IstioMetric without ALL_METRICS, sorted as Pilot's allMetrics
ISTIO_METRICS = ("GRPC_REQUEST_MESSAGES", "GRPC_RESPONSE_MESSAGES", "REQUEST_COUNT", "REQUEST_DURATION",
                 "REQUEST_SIZE", "RESPONSE_SIZE", "TCP_CLOSED_CONNECTIONS", "TCP_OPENED_CONNECTIONS",
                 "TCP_RECEIVED_BYTES", "TCP_SENT_BYTES")
# Istio's installation sets MeshConfig defaultProviders.metrics to its built-in `prometheus` provider; meshward
# takes that as the default when the mesh names none, so a mesh without Telemetry keeps its metrics
DEFAULT_PROVIDERS = ("prometheus",)
KEY = "telemetry-metrics"  # Mesh.memo's key for a proxy's metrics settings, with its outbound key


@dataclasses.dataclass
class _Override:
    """One metric's merged override (Pilot's metricOverride): disabled, and each label's last operation."""

    disabled: bool | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)  # label -> "UPSERT" | "REMOVE"


@dataclasses.dataclass
class _Provider:
    all_disabled: bool = False
    metrics: dict[str, _Override] = dataclasses.field(default_factory=dict)
    interval: str | None = None


def metrics(mesh: Mesh, proxy: model.Proxy) -> model.Metrics:
    """The proxy's bootstrap metrics settings from the Telemetries that apply to it (root namespace, namespace,
    workload) and MeshConfig's providers: worked out once per revision for the proxies of one namespace with the
    same labels as far as Telemetry selectors read them (`Mesh.outbound_key`)."""
    return mesh.memo((KEY, mesh.outbound_key(proxy)), lambda: _metrics(mesh, proxy))


def _metrics(mesh: Mesh, proxy: model.Proxy) -> model.Metrics:
    levels = [m for spec in telemetry.applicable_specs(mesh, proxy) for m in spec.metrics or ()]
    defaults = tuple((mesh.config.default_providers.metrics if mesh.config.default_providers else None)
                     or DEFAULT_PROVIDERS)
    merged = merge(levels, defaults)
    prometheus = [merged[name] for name in sorted(merged) if _is_prometheus(mesh.config, name)]
    if not prometheus:  # no Prometheus provider in scope: Pilot builds no stats filter
        return model.Metrics(disabled=ISTIO_METRICS)
    # several Prometheus providers would each report: a metric or label is gone only when gone from all of them
    disabled = set.intersection(*(_disabled(p) for p in prometheus))
    removed = set.intersection(*(_removed(p, disabled) for p in prometheus))
    # an interval Envoy cannot flush at keeps its default (compiler.validate.telemetry_metrics warns)
    intervals = [ms for p in prometheus if p.interval is not None
                 and (ms := units.duration_ms(p.interval)) < envoy_limits.MAX_STATS_FLUSH_MS]
    return model.Metrics(disabled=tuple(sorted(disabled)), removed_tags=tuple(sorted(removed)),
                         flush_interval_ms=min(intervals) if intervals else 0)


def merge(levels: Sequence[Metrics], defaults: Sequence[str]) -> dict[str, _Provider]:
    """Provider name -> its calling side's merged overrides, as mergeMetrics: the last entry naming providers
    chooses which are in scope; an entry without providers applies to the previous entry's (at first, the
    defaults); overrides apply in order, later ones winning per metric and label; ALL_METRICS disabled turns
    the provider's metrics off until a later override of that side turns any back on."""
    in_scope: Sequence[str] = defaults
    for level in levels:
        if level.providers:
            in_scope = [ref.name for ref in level.providers]
    out: dict[str, _Provider] = {name: _Provider() for name in in_scope} if not levels else {}
    parent: Sequence[str] = defaults
    for level in levels:
        names = [ref.name for ref in level.providers or ()] or parent
        parent = names
        for name in (n for n in names if n in in_scope):
            provider = out.setdefault(name, _Provider())
            if level.reporting_interval is not None:
                provider.interval = level.reporting_interval
            for override in level.overrides or ():
                _apply(provider, override)
    return out


def _apply(provider: _Provider, override: MetricsOverrides) -> None:
    match = override.match
    if match is not None and match.mode == "SERVER":
        return  # the serving side's metrics are not built (module docstring)
    custom = match.custom_metric if match is not None else None
    metric = match.metric if match is not None else None
    every = custom is None and metric in (None, "ALL_METRICS")
    if every and override.disabled:
        provider.all_disabled = True
        return
    provider.all_disabled = False
    for name in ISTIO_METRICS if every else (custom or metric or "",):
        found = provider.metrics.setdefault(name, _Override())
        if override.disabled is not None:
            found.disabled = override.disabled
        found.tags.update((tag, op.operation) for tag, op in (override.tag_overrides or {}).items())


def _disabled(provider: _Provider) -> set[str]:
    if provider.all_disabled:
        return set(ISTIO_METRICS)
    return {name for name, o in provider.metrics.items() if o.disabled and name in ISTIO_METRICS}


def _removed(provider: _Provider, disabled: set[str]) -> set[str]:
    """The labels every metric still reported has removed (every metric, when none is: Envoy's other cluster
    stats carry the labels too)."""
    kept = [name for name in ISTIO_METRICS if name not in disabled] or ISTIO_METRICS
    return set.intersection(*({tag for tag, op in provider.metrics.get(name, _Override()).tags.items()
                               if op == "REMOVE"} for name in kept))


def _is_prometheus(config: MeshConfig, name: str) -> bool:
    provider = config.provider(name)
    return provider is not None and provider.prometheus is not None
