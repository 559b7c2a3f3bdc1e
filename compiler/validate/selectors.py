"""Workload selectors: `matchLabels` (security kinds, DestinationRule) and `labels` (ServiceEntry, Sidecar).
Istio forbids empty keys and wildcards in both."""

from __future__ import annotations

from collections.abc import Mapping

from compiler.validate.report import Path, Report


def match_labels(report: Report, labels: Mapping[str, str] | None, path: Path) -> None:
    for key, problem in report.values.label_selector(labels):
        report.error("MW0211", problem, path + (key,))
