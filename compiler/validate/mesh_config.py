"""The `istio` ConfigMap: its embedded MeshConfig's diagnostics (compiler.mesh_config), and a warning when it sits
where Istio does not read it."""

from __future__ import annotations

from compiler import diagnostics as diag
from compiler import mesh_config
from compiler.validate.report import Report


def check(report: Report) -> None:
    res = report.resource
    if not mesh_config.holds_mesh_config(res):
        return
    parsed = mesh_config.parse(res)
    root = parsed.config.root_namespace if parsed.config is not None else mesh_config.ISTIOD_NAMESPACE
    if res.namespace in (mesh_config.ISTIOD_NAMESPACE, root):
        report.diagnostics.extend(parsed.diagnostics)
        return
    report.diagnostics.append(res.diag(
        "MW0105", f"Istio reads the istio ConfigMap from {mesh_config.ISTIOD_NAMESPACE} (or the namespace its "
        f"rootNamespace names), not from {res.namespace}: this one is ignored", ("metadata", "namespace"),
        severity=diag.Severity.WARNING))
