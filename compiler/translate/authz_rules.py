"""One AuthorizationPolicy rule -> an RBAC policy (permissions and principals), as Pilot's generator builds it.

Pilot: pilot/pkg/security/authz/model/model.go (`New`: which key feeds which side, in which order; `Generate`: AND
of the keys, OR of a key's values, NOT(OR) of its notValues, `any` for an empty side) and generator.go (one
generator per key), matcher/string.go and header.go (Istio's `*` as prefix/suffix/presence). On a TCP chain an
HTTP-only key cannot be checked: an ALLOW rule with one is dropped (allowing less), a DENY or AUDIT rule just loses
that key (denying more), as Pilot's `rule.checkError` does.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

from compiler import model
from compiler.api import security as sec
from compiler.trust import SPIFFE, TrustDomain

JWT_FILTER = "envoy.filters.http.jwt_authn"  # whose dynamic metadata holds the verified JWT payload
JWT_PAYLOAD = "payload"  # pilot/pkg/xds/filters EnvoyJwtFilterPayload: jwt_authn's payload_in_metadata key
HTTP_ONLY = frozenset({"hosts", "methods", "paths", "request.headers", "request.auth.principal",
                       "request.auth.audiences", "request.auth.presenter", "request.auth.claims"})


class HttpOnly(Exception):
    """A key that only an HTTP chain can check, met on a TCP chain."""


_Leaf = Callable[[str], model.AuthzMatch]


def _quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta, so that the regexes read as Pilot's do (Python's re.escape also escapes `-`, `/`)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def _string(value: str, *, prefix: str = "", ignore_case: bool = False) -> model.StringMatch:
    """StringMatcherWithPrefix: `*` is any non-empty value, `*x` a suffix, `x*` a prefix, else exact."""
    if value == "*":
        return model.StringMatch(model.MatchKind.REGEX, ".+")
    if value.startswith("*"):
        if prefix:
            return model.StringMatch(model.MatchKind.REGEX, prefix + ".*" + _quote_meta(value[1:]))
        return model.StringMatch(model.MatchKind.SUFFIX, value[1:], ignore_case)
    if value.endswith("*"):
        return model.StringMatch(model.MatchKind.PREFIX, prefix + value[:-1], ignore_case)
    return model.StringMatch(model.MatchKind.EXACT, prefix + value, ignore_case)


def _header(name: str, value: str, *, ignore_case: bool = False) -> model.RequestHeader:
    """matcher.HeaderMatcher / HostMatcher: `*` alone is a presence match."""
    if value == "*":
        return model.RequestHeader(model.HeaderMatch(name, model.StringMatch(model.MatchKind.PRESENT)))
    return model.RequestHeader(model.HeaderMatch(name, _string(value, ignore_case=ignore_case)))


def _cidr(value: str) -> str:
    """util.AddrStrToCidrRange: a bare address is a /32 (or /128)."""
    return value if "/" in value else f"{value}/{128 if ':' in value else 32}"


def _namespace(value: str) -> model.AuthzMatch:
    pattern = ".*".join(_quote_meta(part) for part in value.split("*"))
    return model.PeerPrincipal(model.StringMatch(model.MatchKind.REGEX, f".*/ns/{pattern}/.*"))


def _service_account(namespace: str) -> _Leaf:
    def leaf(value: str) -> model.AuthzMatch:
        ns, _, sa = value.rpartition("/")
        regex = f"spiffe://.+/ns/{_quote_meta(ns or namespace)}/(.+/|)sa/{_quote_meta(sa)}(/.+)?"
        return model.PeerPrincipal(model.StringMatch(model.MatchKind.REGEX, regex))
    return leaf


def _trust_domain(value: str) -> model.AuthzMatch:
    if value == "*":
        return model.PeerPrincipal(model.StringMatch(model.MatchKind.PREFIX, SPIFFE))
    if "*" not in value:
        return model.PeerPrincipal(model.StringMatch(model.MatchKind.PREFIX, f"{SPIFFE}{value}/"))
    head, _, tail = value.partition("*")
    regex = f"spiffe://{_quote_meta(head)}[^/]*{_quote_meta(tail)}/.*"
    return model.PeerPrincipal(model.StringMatch(model.MatchKind.REGEX, regex))


_ANY_VALUE = model.StringMatch(model.MatchKind.REGEX, ".+")


def _claim(name: str, match: model.StringMatch) -> model.DynamicMetadata:
    return model.DynamicMetadata(JWT_FILTER, (JWT_PAYLOAD, name), match)


def request_principal(value: str) -> model.AuthzMatch:
    """requestPrincipalGenerator: `ISS/SUB` split at the last `/` (the issuer may be a URL), `*` on either side."""
    iss, found, sub = value.rpartition("/")
    if not found:
        iss, sub = value, ""
    exact = model.MatchKind.EXACT
    if value == "*":
        m_iss = m_sub = _ANY_VALUE
    elif value.startswith("*"):
        if found:
            m_iss = _ANY_VALUE if iss == "*" else model.StringMatch(model.MatchKind.SUFFIX, iss[1:])
            m_sub = model.StringMatch(exact, sub)
        else:
            m_iss, m_sub = _ANY_VALUE, model.StringMatch(model.MatchKind.SUFFIX, value[1:])
    elif value.endswith("*"):
        if found:
            m_iss = model.StringMatch(exact, iss)
            m_sub = _ANY_VALUE if sub == "*" else model.StringMatch(model.MatchKind.PREFIX, sub[:-1])
        else:
            m_iss, m_sub = model.StringMatch(model.MatchKind.PREFIX, value[:-1]), _ANY_VALUE
    else:
        m_iss, m_sub = model.StringMatch(exact, iss), model.StringMatch(exact, sub)
    return model.AuthzAnd((_claim("iss", m_iss), _claim("sub", m_sub)))


def _claims(claims: tuple[str, ...]) -> _Leaf:
    """MetadataListValueMatcherForJWTClaims: the claim, or one element of it when it is a list."""
    return lambda value: model.DynamicMetadata(JWT_FILTER, (JWT_PAYLOAD, *claims), _string(value), one_of_list=True,
                                               or_list=True)


def _filter_metadata(key: str) -> _Leaf:
    """envoyFilterGenerator: `experimental.envoy.filters.a.b[c]` reads key c of filter envoy.filters.a.b; a value
    `[v]` matches one element of a list there."""
    name, _, rest = key.removeprefix("experimental.").removesuffix("]").partition("[")

    def leaf(value: str) -> model.AuthzMatch:
        listed = value.startswith("[") and value.endswith("]")
        return model.DynamicMetadata(name, (rest,), _string(value.strip("[]") if listed else value),
                                     one_of_list=listed)
    return leaf


def _path(value: str) -> model.AuthzMatch:
    """pathGenerator: Istio's `{*}` / `{**}` make a URI template (matcher/template.go), anything else a path."""
    if "{*}" in value or "{**}" in value:
        return model.PathTemplate(value.replace("{**}", "**").replace("{*}", "*"))
    return model.UrlPath(_string(value))


@dataclasses.dataclass(frozen=True, slots=True)
class _Key:
    """One key of a rule: its values OR-ed, its notValues OR-ed and negated."""

    name: str
    leaf: _Leaf
    values: Sequence[str]
    not_values: Sequence[str]

    def build(self) -> list[model.AuthzMatch]:
        out: list[model.AuthzMatch] = []
        if self.values:
            out.append(model.AuthzOr(tuple(self.leaf(v) for v in self.values)))
        if self.not_values:
            out.append(model.AuthzNot(model.AuthzOr(tuple(self.leaf(v) for v in self.not_values))))
        return out


def _when_key(key: str, namespace: str) -> tuple[str, _Leaf, bool]:
    """A `when` key's generator and whether it is a permission (else a principal); validation has refused the
    keys that are not here."""
    fixed: dict[str, tuple[_Leaf, bool]] = {
        "destination.ip": (lambda v: model.DestinationIp(_cidr(v)), True),
        "destination.port": (lambda v: model.DestinationPort(int(v)), True),
        "connection.sni": (lambda v: model.ServerName(_string(v)), True),
        "source.ip": (lambda v: model.PeerIp(_cidr(v)), False),
        "remote.ip": (lambda v: model.PeerIp(_cidr(v), remote=True), False),
        "source.namespace": (_namespace, False),
        "source.trustDomain": (_trust_domain, False),
        "source.serviceAccount": (_service_account(namespace), False),
        "source.principal": (lambda v: model.PeerPrincipal(_string(v, prefix=SPIFFE)), False),
        "request.auth.principal": (request_principal, False),
        "request.auth.audiences": (_claims(("aud",)), False),
        "request.auth.presenter": (_claims(("azp",)), False),
    }
    if key in fixed:
        return key, *fixed[key]
    if key.startswith("experimental.envoy.filters."):
        return "experimental.envoy.filters", _filter_metadata(key), True
    header = sec.header_name(key)
    if header is not None:
        return "request.headers", lambda v: _header(header, v), False
    return "request.auth.claims", _claims(sec.claim_path(key) or ()), False


def _source_keys(s: sec.Source, namespace: str) -> list[_Key]:
    """In Pilot's order (insertFront reverses the order of the calls)."""
    return [
        _Key("source.principal", lambda v: model.PeerPrincipal(_string(v, prefix=SPIFFE)), s.principals or (),
             s.not_principals or ()),
        _Key("request.auth.principal", request_principal, s.request_principals or (), s.not_request_principals or ()),
        _Key("source.serviceAccount", _service_account(namespace), s.service_accounts or (),
             s.not_service_accounts or ()),
        _Key("source.trustDomain", _trust_domain, s.trust_domains or (), s.not_trust_domains or ()),
        _Key("source.namespace", _namespace, s.namespaces or (), s.not_namespaces or ()),
        _Key("remote.ip", lambda v: model.PeerIp(_cidr(v), remote=True), s.remote_ip_blocks or (),
             s.not_remote_ip_blocks or ()),
        _Key("source.ip", lambda v: model.PeerIp(_cidr(v)), s.ip_blocks or (), s.not_ip_blocks or ()),
    ]


def _operation_keys(o: sec.Operation) -> list[_Key]:
    return [
        _Key("hosts", lambda v: _header(":authority", v, ignore_case=True), o.hosts or (), o.not_hosts or ()),
        _Key("methods", lambda v: _header(":method", v), o.methods or (), o.not_methods or ()),
        _Key("paths", _path, o.paths or (), o.not_paths or ()),
        _Key("ports", lambda v: model.DestinationPort(int(v)), o.ports or (), o.not_ports or ()),
    ]


def _and(keys: Sequence[_Key], *, for_tcp: bool, allow: bool) -> model.AuthzMatch:
    """generatePermission / generatePrincipal: AND of the keys, `any` when there is none."""
    out: list[model.AuthzMatch] = []
    for key in keys:
        if not (key.values or key.not_values):
            continue
        if for_tcp and key.name in HTTP_ONLY:
            if allow:
                raise HttpOnly(key.name)
            continue
        out += key.build()
    return model.AuthzAnd(tuple(out) or (model.AuthzAny(True),))


def _migrated(keys: list[_Key], trust: TrustDomain) -> list[_Key]:
    """Model.MigrateTrustDomain: principals and trust domains read against the mesh's trust domain and aliases."""
    out = []
    for key in keys:
        if key.name == "source.principal":
            key = dataclasses.replace(key, values=trust.principals(key.values),
                                      not_values=trust.principals(key.not_values))
        elif key.name == "source.trustDomain":
            key = dataclasses.replace(key, values=trust.trust_domains(key.values),
                                      not_values=trust.trust_domains(key.not_values))
        out.append(key)
    return out


def policy(name: str, rule: sec.Rule, namespace: str, *, for_tcp: bool, allow: bool,
           trust: TrustDomain) -> model.RbacPolicy | None:
    """The rule's RBAC policy; None when an ALLOW rule cannot be checked on this (TCP) chain."""
    permissions: list[_Key] = []
    principals: list[_Key] = []
    for cond in rule.when or ():
        key, leaf, is_permission = _when_key(cond.key, namespace)
        (permissions if is_permission else principals).append(_Key(key, leaf, cond.values or (),
                                                                    cond.not_values or ()))
    froms: list[sec.Source | None] = [f.source for f in rule.from_ or () if f.source is not None] or [None]
    tos: list[sec.Operation | None] = [t.operation for t in rule.to or () if t.operation is not None] or [None]
    try:
        return model.RbacPolicy(
            name,
            permissions=tuple(_and([*(_operation_keys(o) if o else ()), *permissions], for_tcp=for_tcp, allow=allow)
                              for o in tos),
            principals=tuple(_and(_migrated([*(_source_keys(s, namespace) if s else ()), *principals], trust),
                                  for_tcp=for_tcp, allow=allow) for s in froms))
    except HttpOnly:
        return None
