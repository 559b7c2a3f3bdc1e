"""Security kinds' rules: PeerAuthentication, AuthorizationPolicy, RequestAuthentication (selectors, targetRefs,
mTLS port maps, authorization rules, JWT rules)."""

from __future__ import annotations

import re
import urllib.parse

from compiler.api import common
from compiler.api import security as sec
from compiler.api.telemetry import Telemetry
from compiler.validate import envoy_limits
from compiler.validate.report import Path, Report


def _selector(report: Report, selector: sec.WorkloadSelector | None) -> None:
    if selector is not None:
        for key, problem in report.values.label_selector(selector.match_labels):
            report.error("MW0211", problem, ("selector", "matchLabels", key))


# pkg/config/validation/validation.go allowedTargetRefs, as its message prints them (CanonicalGroup/version/kind)
_ALLOWED_TARGETS = {("core", "Service"): "core/v1/Service",
                    ("networking.istio.io", "ServiceEntry"): "networking.istio.io/v1/ServiceEntry",
                    ("gateway.networking.k8s.io", "Gateway"): "gateway.networking.k8s.io/v1/Gateway",
                    ("gateway.networking.k8s.io", "GatewayClass"): "gateway.networking.k8s.io/v1/GatewayClass"}


def targets(report: Report, spec: sec.AuthorizationPolicy | sec.RequestAuthentication | Telemetry, code: str) -> None:
    """validateOneOfSelectorType and validatePolicyTargetReference(s), then what meshward makes of a valid one."""
    count = sum(x is not None for x in (spec.selector, spec.target_ref, spec.target_refs or None))
    if count > 1:
        report.error(code, "only one of targetRefs or workloadSelector can be set", ("selector",))
    refs: list[tuple[Path, common.PolicyTargetReference]] = [(("targetRef",), spec.target_ref)] if spec.target_ref else []
    refs += [(("targetRefs", i), ref) for i, ref in enumerate(spec.target_refs or [])]
    for path, ref in refs:
        valid = True
        if not ref.name:
            report.error(code, "targetRef name must be set", path + ("name",))
            valid = False
        if ref.namespace:
            report.error(code, "targetRef namespace must not be set; cross namespace referencing is not supported",
                         path + ("namespace",))
            valid = False
        if (ref.group or "core", ref.kind) not in _ALLOWED_TARGETS:
            report.error(code, f"targetRef must be to one of [{' '.join(_ALLOWED_TARGETS.values())}] but was "
                               f"{ref.group or ''}/{ref.kind}", path + ("kind",))
            valid = False
        if valid:
            report.error("MW0227", _unenforced(ref, report.resource.kind), path)


def _unenforced(ref: common.PolicyTargetReference, kind: str) -> str:
    """What Istio does with a targetRef (pilot/pkg/model/policyattachment.go: a Gateway's pods; a Service's or
    ServiceEntry's waypoint in ambient mode; sidecars never), and why no proxy meshward builds does it."""
    if ref.kind == "Gateway":
        where = (f'Istio applies this {kind} to the pods of Kubernetes Gateway "{ref.name}" '
                 "(gateway.networking.k8s.io), and meshward builds no Gateway API gateways")
    elif ref.kind == "GatewayClass":
        where = (f'Istio applies this {kind} to the Kubernetes Gateways of GatewayClass "{ref.name}", and meshward '
                 "builds no Gateway API gateways")
    else:
        where = (f'Istio applies this {kind} in the waypoint proxy of {ref.kind} "{ref.name}" (ambient mode; '
                 "sidecars ignore it), and meshward builds no waypoints")
    return f"{where}: no proxy enforces it"


def check_peer(report: Report) -> None:
    spec: sec.PeerAuthentication = report.resource.spec
    _selector(report, spec.selector)
    if spec.port_level_mtls is None:
        return
    if not spec.port_level_mtls:
        report.error("MW0220", "portLevelMtls cannot be empty", ("portLevelMtls",))
    if spec.selector is None or not spec.selector.match_labels:
        report.error("MW0220", "portLevelMtls requires selector", ("portLevelMtls",))
    for key in spec.port_level_mtls:
        number = key if isinstance(key, int) else (int(key) if str(key).isdigit() else None)
        if number is None or not 1 <= number <= 65535:
            report.error("MW0203", f"port {key!s} must be between 1-65535", ("portLevelMtls", key))


def check_authorization(report: Report) -> None:
    spec: sec.AuthorizationPolicy = report.resource.spec
    _selector(report, spec.selector)
    targets(report, spec, "MW0219")
    action = spec.action or "ALLOW"
    if action == "CUSTOM" and report.resource.annotations.get("istio.io/dry-run", "").lower() in ("1", "t", "true"):
        report.error("MW0226", "meshward does not compile istio.io/dry-run on a CUSTOM policy: remove the "
                     "annotation, or the policy", ("action",))
    if action == "CUSTOM" and (spec.provider is None or not spec.provider.name):
        report.error("MW0219", "a CUSTOM policy needs provider.name", ("action",))
    if action != "CUSTOM" and spec.provider is not None:
        report.error("MW0219", f"provider applies only to CUSTOM policies, not {action}", ("provider",))
    for i, rule in enumerate(spec.rules or []):
        _rule(report, rule, ("rules", i))


def _rule(report: Report, rule: sec.Rule, path: Path) -> None:
    for i, source_rule in enumerate(rule.from_ or []):
        source = source_rule.source
        where = path + ("from", i, "source")
        if source is None:
            report.error("MW0219", "from needs a source", path + ("from", i))
            continue
        if (source.service_accounts or source.not_service_accounts) and (
                source.principals or source.not_principals or source.namespaces or source.not_namespaces):
            report.error("MW0219", "Cannot set serviceAccounts with namespaces or principals", where)
        for key in ("ip_blocks", "not_ip_blocks", "remote_ip_blocks", "not_remote_ip_blocks"):
            for j, block in enumerate(getattr(source, key) or []):
                report.found("MW0218", report.values.ip_or_cidr(block), where + (_camel(key), j))
    for i, to in enumerate(rule.to or []):
        operation = to.operation
        if operation is None:
            report.error("MW0219", "to needs an operation", path + ("to", i))
            continue
        for key in ("ports", "not_ports"):
            for j, value in enumerate(getattr(operation, key) or []):
                if not value.isdigit() or not 1 <= int(value) <= 65535:
                    report.error("MW0203", f'port "{value}" must be between 1-65535',
                                 path + ("to", i, "operation", _camel(key), j))
    for i, condition in enumerate(rule.when or []):
        if not condition.values and not condition.not_values:
            report.error("MW0219", f'condition "{condition.key}" needs values or notValues', path + ("when", i))
        _condition(report, condition, path + ("when", i))


_IP_KEYS = frozenset({"source.ip", "remote.ip", "destination.ip"})
_PLAIN_KEYS = frozenset({"source.namespace", "source.principal", "source.serviceAccount", "source.trustDomain",
                         "request.auth.principal", "request.auth.audiences", "request.auth.presenter",
                         "connection.sni", "destination.port", *_IP_KEYS})


def _filter_key(key: str) -> bool:
    """`experimental.envoy.filters.NAME[KEY]`."""
    return bool(re.fullmatch(r"experimental\.envoy\.filters\.[^\[\]]+\[[^\[\]]+\]", key))


def _condition(report: Report, condition: sec.Condition, path: Path) -> None:
    """The `when` keys Pilot's authz model knows (pilot/pkg/security/authz/model/model.go `New`), with values it
    can turn into matchers (pkg/config/security/security.go ValidateAttribute)."""
    key = condition.key
    if key not in _PLAIN_KEYS and sec.header_name(key) is None and not (
            key.startswith("request.auth.claims") and sec.claim_path(key)) and not _filter_key(key):
        report.error("MW0219", f'unknown attribute "{key}"', path + ("key",))
        return
    for field, values in (("values", condition.values), ("notValues", condition.not_values)):
        for j, value in enumerate(values or []):
            if key in _IP_KEYS:
                report.found("MW0218", report.values.ip_or_cidr(value), path + (field, j))
            elif key == "destination.port" and (not value.isdigit() or int(value) > 65535):
                report.error("MW0203", f'port "{value}" must be between 0-65535', path + (field, j))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def check_request(report: Report) -> None:
    spec: sec.RequestAuthentication = report.resource.spec
    _selector(report, spec.selector)
    targets(report, spec, "MW0220")
    for i, rule in enumerate(spec.jwt_rules or []):
        _jwt(report, rule, ("jwtRules", i))


def _jwt(report: Report, rule: sec.JWTRule, path: Path) -> None:
    if not rule.issuer:
        report.error("MW0220", "a JWT rule needs an issuer", path)
    if rule.jwks_uri is not None and rule.jwks_uri_legacy is not None:
        report.error("MW0220", "set only one of jwksUri and jwks_uri", path + ("jwks_uri",))
    for key, uri in (("jwksUri", rule.jwks_uri), ("jwks_uri", rule.jwks_uri_legacy)):
        if uri is not None:
            report.found("MW0220", _url(uri), path + (key,))
    if rule.jwks is not None and (rule.jwks_uri or rule.jwks_uri_legacy):
        report.error("MW0220", "set only one of jwks and jwksUri", path + ("jwks",))
    if rule.jwks is not None:
        report.found("MW0220", envoy_limits.jwks(rule.jwks), path + ("jwks",))
    for i, header in enumerate(rule.from_headers or []):
        report.found("MW0215", report.values.header_name(header.name), path + ("fromHeaders", i, "name"))
    if rule.output_payload_to_header:
        report.found("MW0215", report.values.header_name(rule.output_payload_to_header),
                     path + ("outputPayloadToHeader",))
    if rule.timeout is not None:
        problem = report.values.duration(rule.timeout)
        if problem:
            report.error("MW0202", f"timeout must be a valid duration greater than 1ms: {problem}", path + ("timeout",))


def _url(uri: str) -> str | None:
    try:
        parsed = urllib.parse.urlsplit(uri)
    except ValueError:
        return f'"{uri}": url must have scheme http or https'
    if parsed.scheme not in ("http", "https"):
        return f'"{uri}": url must have schema one of [http, https]'
    if not parsed.hostname:
        return f'"{uri}": url must have a host'
    return None
