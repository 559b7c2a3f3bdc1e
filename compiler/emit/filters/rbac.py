"""envoy.filters.http.rbac and envoy.filters.network.rbac: a workload's AuthorizationPolicies, one filter per action
(model.Rbac), each permission and principal of the model mapped to its rbac.v3 field."""

from __future__ import annotations

from envoy.config.core.v3 import address_pb2, extension_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from envoy.extensions.path.match.uri_template.v3 import uri_template_match_pb2
from envoy.type.matcher.v3 import metadata_pb2, path_pb2, value_pb2
from google.protobuf import wrappers_pb2

from compiler import model
from compiler.emit import common, route
from compiler.emit.common import EmitError

HTTP_NAME = "envoy.filters.http.rbac"
NETWORK_NAME = "envoy.filters.network.rbac"
TCP_STAT_PREFIX = "tcp."  # Pilot's RBACTCPFilterStatPrefix
# Pilot's shadow stat prefixes (pilot/pkg/security/authz/model/model.go RBACShadowRules*StatPrefix)
_SHADOW_PREFIX = {model.RbacAction.ALLOW: "istio_dry_run_allow_", model.RbacAction.DENY: "istio_dry_run_deny_"}
_ACTION = {model.RbacAction.ALLOW: rbac_pb2.RBAC.ALLOW, model.RbacAction.DENY: rbac_pb2.RBAC.DENY,
           model.RbacAction.LOG: rbac_pb2.RBAC.LOG}


def _cidr(cidr: str) -> address_pb2.CidrRange:
    """The address as written, as Pilot's util.AddrStrToCidrRange keeps it (Envoy masks it)."""
    address, _, length = cidr.partition("/")
    return address_pb2.CidrRange(address_prefix=address, prefix_len=wrappers_pb2.UInt32Value(value=int(length)))


def _metadata(m: model.DynamicMetadata) -> metadata_pb2.MetadataMatcher:
    value = value_pb2.ValueMatcher(string_match=common.string_matcher(m.match))
    listed = value_pb2.ValueMatcher(list_match=value_pb2.ListMatcher(one_of=value))
    if m.or_list:
        value = value_pb2.ValueMatcher(or_match=value_pb2.OrMatcher(value_matchers=[value, listed]))
    elif m.one_of_list:
        value = listed
    path = [metadata_pb2.MetadataMatcher.PathSegment(key=k) for k in m.path]
    return metadata_pb2.MetadataMatcher(filter=m.filter, path=path, value=value)


def _uri_template(template: str) -> extension_pb2.TypedExtensionConfig:
    """Pilot's permissionPathTemplate."""
    return extension_pb2.TypedExtensionConfig(name="uri-template", typed_config=common.pack(
        uri_template_match_pb2.UriTemplateMatchConfig(path_template=template)))


def permission(m: model.AuthzMatch) -> rbac_pb2.Permission:
    match m:
        case model.AuthzAny():
            return rbac_pb2.Permission(any=True)
        case model.AuthzAnd(all_of=items):
            return rbac_pb2.Permission(and_rules=rbac_pb2.Permission.Set(rules=[permission(i) for i in items]))
        case model.AuthzOr(any_of=items):
            return rbac_pb2.Permission(or_rules=rbac_pb2.Permission.Set(rules=[permission(i) for i in items]))
        case model.AuthzNot(negated=item):
            return rbac_pb2.Permission(not_rule=permission(item))
        case model.RequestHeader(header=h):
            return rbac_pb2.Permission(header=route.header(h))
        case model.UrlPath(match=s):
            return rbac_pb2.Permission(url_path=path_pb2.PathMatcher(path=common.string_matcher(s)))
        case model.PathTemplate(template=template):
            return rbac_pb2.Permission(uri_template=_uri_template(template))
        case model.DynamicMetadata():
            return rbac_pb2.Permission(metadata=_metadata(m))
        case model.DestinationPort(port=port):
            return rbac_pb2.Permission(destination_port=port)
        case model.DestinationIp(cidr=cidr):
            return rbac_pb2.Permission(destination_ip=_cidr(cidr))
        case model.ServerName(match=s):
            return rbac_pb2.Permission(requested_server_name=common.string_matcher(s))
    raise EmitError(f"{type(m).__name__} is not an RBAC permission")


def principal(m: model.AuthzMatch) -> rbac_pb2.Principal:
    match m:
        case model.AuthzAny():
            return rbac_pb2.Principal(any=True)
        case model.AuthzAnd(all_of=items):
            return rbac_pb2.Principal(and_ids=rbac_pb2.Principal.Set(ids=[principal(i) for i in items]))
        case model.AuthzOr(any_of=items):
            return rbac_pb2.Principal(or_ids=rbac_pb2.Principal.Set(ids=[principal(i) for i in items]))
        case model.AuthzNot(negated=item):
            return rbac_pb2.Principal(not_id=principal(item))
        case model.PeerPrincipal(match=s):
            return rbac_pb2.Principal(
                authenticated=rbac_pb2.Principal.Authenticated(principal_name=common.string_matcher(s)))
        case model.PeerIp(cidr=cidr, remote=True):
            return rbac_pb2.Principal(remote_ip=_cidr(cidr))
        case model.PeerIp(cidr=cidr):
            return rbac_pb2.Principal(direct_remote_ip=_cidr(cidr))
        case model.RequestHeader(header=h):
            return rbac_pb2.Principal(header=route.header(h))
        case model.DynamicMetadata():
            return rbac_pb2.Principal(metadata=_metadata(m))
    raise EmitError(f"{type(m).__name__} is not an RBAC principal")


def _rules(action: model.RbacAction, policies: tuple[model.RbacPolicy, ...]) -> rbac_pb2.RBAC:
    return rbac_pb2.RBAC(action=_ACTION[action], policies={
        p.name: rbac_pb2.Policy(permissions=[permission(x) for x in p.permissions],
                                principals=[principal(x) for x in p.principals]) for p in policies})


def http_config(rbac: model.Rbac) -> http_rbac_pb2.RBAC:
    out = http_rbac_pb2.RBAC()
    if rbac.rules is not None:
        out.rules.CopyFrom(_rules(rbac.action, rbac.rules))
    if rbac.shadow_rules is not None:
        out.shadow_rules.CopyFrom(_rules(rbac.action, rbac.shadow_rules))
        out.shadow_rules_stat_prefix = _SHADOW_PREFIX.get(rbac.action, "")
    return out


def http_marks(custom: model.CustomAuthz, shadow_prefix: str) -> http_rbac_pb2.RBAC:
    """The RBAC filter ahead of ext_authz: the CUSTOM rules as DENY shadow rules, enforcing nothing."""
    return http_rbac_pb2.RBAC(shadow_rules=_rules(model.RbacAction.DENY, custom.marks),
                              shadow_rules_stat_prefix=shadow_prefix)


def network_marks(custom: model.CustomAuthz, shadow_prefix: str) -> network_rbac_pb2.RBAC:
    return network_rbac_pb2.RBAC(stat_prefix=TCP_STAT_PREFIX, shadow_rules=_rules(model.RbacAction.DENY, custom.marks),
                                 shadow_rules_stat_prefix=shadow_prefix)


def network_config(rbac: model.Rbac) -> network_rbac_pb2.RBAC:
    out = network_rbac_pb2.RBAC(stat_prefix=TCP_STAT_PREFIX)
    if rbac.rules is not None:
        out.rules.CopyFrom(_rules(rbac.action, rbac.rules))
    if rbac.shadow_rules is not None:
        out.shadow_rules.CopyFrom(_rules(rbac.action, rbac.shadow_rules))
        out.shadow_rules_stat_prefix = _SHADOW_PREFIX.get(rbac.action, "")
    return out
