"""Telemetry's rules (Istio's ValidateTelemetry): its selector, and targetRef(s), which bind no proxy meshward
builds (MW0227). Provider names are checked against MeshConfig by compiler.analyze.telemetry."""

from __future__ import annotations

from compiler.api.telemetry import Telemetry
from compiler.validate import security
from compiler.validate.report import Report


def check(report: Report) -> None:
    spec: Telemetry = report.resource.spec
    if spec.selector is not None:
        for key, problem in report.values.label_selector(spec.selector.match_labels):
            report.error("MW0211", problem, ("selector", "matchLabels", key))
    security.targets(report, spec, "MW0241")
