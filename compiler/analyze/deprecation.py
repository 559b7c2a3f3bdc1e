"""Deprecated fields that still load but that Istio ignores or replaced (IST0002).

Istio's deprecation.FieldAnalyzer reports `fault.delay.percent` and a Sidecar's `outboundTrafficPolicy.egressProxy`;
the other fields here are marked deprecated in Istio's API protos and have a replacement.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from compiler.analyze.context import Context
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource

Path = tuple[str | int, ...]


def check(ctx: Context) -> Iterator[Diagnostic]:
    for vs in ctx.of_kind("VirtualService"):
        yield from _virtual_service(vs)
    for sc in ctx.of_kind("Sidecar"):
        policy = sc.spec.outbound_traffic_policy
        if policy is not None and policy.egress_proxy is not None:
            yield sc.diag("MW0323", "outboundTrafficPolicy.egressProxy is ignored",
                          ("spec", "outboundTrafficPolicy", "egressProxy"))
    for dr in ctx.of_kind("DestinationRule"):
        yield from _destination_rule(dr)


def _virtual_service(vs: Resource) -> Iterator[Diagnostic]:
    for i, rule in enumerate(vs.spec.http or ()):
        base: Path = ("spec", "http", i)
        delay = rule.fault.delay if rule.fault else None
        if delay is not None and delay.percent:
            yield _replaced(vs, "fault.delay.percent", "fault.delay.percentage", (*base, "fault", "delay", "percent"))
        if rule.mirror_percent is not None or rule.mirror_percent_legacy is not None:
            key = "mirrorPercent" if rule.mirror_percent is not None else "mirror_percent"
            yield _replaced(vs, key, "mirrorPercentage", (*base, key))
        if rule.cors_policy is not None and rule.cors_policy.allow_origin is not None:
            yield _replaced(vs, "corsPolicy.allowOrigin", "corsPolicy.allowOrigins",
                            (*base, "corsPolicy", "allowOrigin"))


def _destination_rule(dr: Resource) -> Iterator[Diagnostic]:
    policies: list[tuple[Any, Path]] = []
    if dr.spec.traffic_policy is not None:
        policies.append((dr.spec.traffic_policy, ("spec", "trafficPolicy")))
    for i, subset in enumerate(dr.spec.subsets or ()):
        if subset.traffic_policy is not None:
            policies.append((subset.traffic_policy, ("spec", "subsets", i, "trafficPolicy")))
    for policy, path in list(policies):
        for j, port in enumerate(policy.port_level_settings or ()):
            policies.append((port, (*path, "portLevelSettings", j)))
    for policy, path in policies:
        yield from _traffic_policy(dr, policy, path)


def _traffic_policy(dr: Resource, policy: Any, path: Path) -> Iterator[Diagnostic]:
    lb = policy.load_balancer
    if lb is not None and lb.consistent_hash is not None and lb.consistent_hash.minimum_ring_size is not None:
        yield _replaced(dr, "consistentHash.minimumRingSize", "consistentHash.ringHash.minimumRingSize",
                        (*path, "loadBalancer", "consistentHash", "minimumRingSize"))
    if lb is not None and lb.warmup_duration_secs is not None:
        yield _replaced(dr, "loadBalancer.warmupDurationSecs", "loadBalancer.warmup.duration",
                        (*path, "loadBalancer", "warmupDurationSecs"))
    od = policy.outlier_detection
    if od is not None and od.consecutive_errors is not None:
        yield _replaced(dr, "outlierDetection.consecutiveErrors", "outlierDetection.consecutive5xxErrors",
                        (*path, "outlierDetection", "consecutiveErrors"))


def _replaced(res: Resource, old: str, new: str, path: Path) -> Diagnostic:
    return res.diag("MW0323", f"{old} is deprecated; use {new}", path)
