"""Stage 1c: per-resource semantic validation, following Istio's validation webhook (pkg/config/validation).

Each kind's rules live in their own module; every rule reports into a `Report` and never raises, so one bad
resource yields all its diagnostics and the others are still checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from compiler import diagnostics as diag
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource
from compiler.validate import (
    destination_rule,
    gateway,
    kube,
    mesh_config,
    security,
    service_entry,
    sidecar,
    telemetry,
    virtual_service,
)
from compiler.validate.report import Report
from compiler.validate.values import ValueChecks

CHECKS: dict[str, Callable[[Report], None]] = {
    "VirtualService": virtual_service.check,
    "DestinationRule": destination_rule.check,
    "Gateway": gateway.check,
    "ServiceEntry": service_entry.check,
    "WorkloadEntry": service_entry.check_workload_entry,
    "Sidecar": sidecar.check,
    "Telemetry": telemetry.check,
    "PeerAuthentication": security.check_peer,
    "AuthorizationPolicy": security.check_authorization,
    "RequestAuthentication": security.check_request,
    "Service": kube.check_service,
    "EndpointSlice": kube.check_endpoint_slice,
    "Pod": kube.check_pod,
    "ConfigMap": mesh_config.check,
}


def validate(resources: Iterable[Resource]) -> list[Diagnostic]:
    """Diagnostics for every resource (a ResourceSet or any iterable of resources)."""
    values = ValueChecks()
    out: list[Diagnostic] = []
    for resource in resources:
        out.extend(validate_one(resource, values))
    return out


def validate_one(resource: Resource, values: ValueChecks) -> list[Diagnostic]:
    """`values`: memos of the checks of one value, shared by the resources it is given with."""
    check = CHECKS.get(resource.kind)
    if check is None:
        return []
    report = Report(resource, values)
    try:
        check(report)
    except Exception as err:  # noqa: BLE001 - a rule bug must not stop the other resources' checks
        report.diagnostics.append(diag.make("MW0404", f"validation failed: {type(err).__name__}: {err}",
                                            resource.doc.position(), resource=resource.origin))
    return report.diagnostics
