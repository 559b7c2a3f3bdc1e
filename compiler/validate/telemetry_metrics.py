"""Telemetry `metrics` settings upstream Envoy cannot carry out, warned at their line (MW0403).

meshward's metrics are Envoy's own cluster stats with Istio's labels read out of the stat names (bootstrap
`stats_tags`, compiler.emit.prometheus_stats), not Istio's `istio.stats` extension. So: a label cannot be
computed from a CEL expression (tagOverrides UPSERT); there are no custom metrics to override; a label is
extracted from every stat's name alike, so it is removed only when removed from all metrics (a REMOVE under one
metric's match is not compiled); Envoy flushes stats at least every 300 s (bootstrap `stats_flush_interval`).
"""

from __future__ import annotations

from compiler import units
from compiler.api.telemetry import Metrics, MetricsOverrides, Telemetry
from compiler.validate import envoy_limits, fields
from compiler.validate.report import Path, Report


def check(report: Report) -> None:
    spec: Telemetry = report.resource.spec
    for i, entry in enumerate(spec.metrics or ()):
        _interval(report, entry, ("metrics", i, "reportingInterval"))
        for j, override in enumerate(entry.overrides or ()):
            _override(report, override, ("metrics", i, "overrides", j))


def _interval(report: Report, entry: Metrics, path: Path) -> None:
    if entry.reporting_interval is None:
        return
    problem = fields.duration(entry.reporting_interval)
    if problem:
        report.error("MW0202", problem, path)
    elif units.duration_ms(entry.reporting_interval) >= envoy_limits.MAX_STATS_FLUSH_MS:
        report.warning("MW0403", f"reportingInterval {entry.reporting_interval}: Envoy flushes its stats at least "
                                 "every 300s, so the proxy keeps Envoy's default (5s)", path)


def _override(report: Report, override: MetricsOverrides, path: Path) -> None:
    match = override.match
    if match is not None and match.mode == "SERVER":
        return  # the serving side's metrics are not built at all (README, Limitations)
    if match is not None and match.custom_metric is not None:
        report.warning("MW0403", f'customMetric "{match.custom_metric}": custom metrics are defined by Istio\'s '
                                 "stats extension, which upstream Envoy does not have; this override changes nothing",
                       (*path, "match", "customMetric"))
        return
    one = match.metric if match is not None and match.metric not in (None, "ALL_METRICS") else None
    for tag, op in (override.tag_overrides or {}).items():
        at = (*path, "tagOverrides", tag)
        if op.operation == "UPSERT":
            report.warning("MW0403", f"tagOverrides.{tag}: UPSERT computes a label with Istio's stats extension (a "
                                     "CEL expression); upstream Envoy only reads labels out of stat names: not "
                                     "compiled", at)
        elif one is not None:
            report.warning("MW0403", f"tagOverrides.{tag}: Envoy extracts a label from every stat's name alike, so "
                                     f"removing it from {one} alone is not compiled: remove it for ALL_METRICS", at)
