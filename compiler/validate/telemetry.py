"""Telemetry's rules (Istio's ValidateTelemetry): its selector, targetRef(s), which bind no proxy meshward
builds (MW0227), and access-log filters, CEL expressions checked as Istio parses them and as Envoy builds them
(compiler.validate.cel); metrics settings upstream Envoy cannot carry out (compiler.validate.telemetry_metrics).
Provider names are checked against MeshConfig by compiler.analyze.telemetry."""

from __future__ import annotations

from compiler.api.telemetry import Telemetry
from compiler.validate import cel, security, telemetry_metrics
from compiler.validate.report import Report

CODES = {cel.Verdict.SYNTAX: "MW0242", cel.Verdict.ENVOY: "MW0243", cel.Verdict.WARNING: "MW0244"}


def check(report: Report) -> None:
    spec: Telemetry = report.resource.spec
    if spec.selector is not None:
        for key, problem in report.values.label_selector(spec.selector.match_labels):
            report.error("MW0211", problem, ("selector", "matchLabels", key))
    security.targets(report, spec, "MW0241")
    for i, logging in enumerate(spec.access_logging or ()):
        if logging.filter is not None:
            _filter(report, logging.filter.expression, ("accessLogging", i, "filter", "expression"))
    telemetry_metrics.check(report)


def _filter(report: Report, expression: str, path: tuple[str | int, ...]) -> None:
    for problem in report.values.cel(expression):
        message = f"filter expression {_short(expression)}: {problem.message}"
        if problem.verdict is cel.Verdict.WARNING:
            report.warning(CODES[problem.verdict], message, path)
        else:
            report.error(CODES[problem.verdict], message, path)


def _short(expression: str) -> str:
    flat = " ".join(expression.split())
    return repr(flat if len(flat) <= 60 else flat[:57] + "...")
