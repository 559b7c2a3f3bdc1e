"""Host names as Istio reads them: short names, FQDNs, wildcards, `namespace/host` scoping and exportTo.

Every analyzer compares hosts, and they must all agree with Istio on what `reviews` in namespace `shop` means
(`reviews.shop.svc.cluster.local`) and on when `*.example.com` covers `a.example.com`
(istio/istio pkg/config/host: Name.Matches / Name.SubsetOf; pkg/config/analysis/analyzers/util/hosts.go).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

DOMAIN_SUFFIX = "svc.cluster.local"
EXPORT_ALL = "*"
EXPORT_LOCAL = "."
EXPORT_NONE = "~"
MESH_GATEWAY = "mesh"


def is_wildcard(host: str) -> bool:
    return host.startswith("*")


def to_fqdn(host: str, namespace: str) -> str:
    """`reviews` in namespace `shop` -> `reviews.shop.svc.cluster.local`; names with a dot and wildcards stay."""
    if "." in host or host.startswith("*"):  # (is_wildcard, inlined: asked for every host of every resource)
        return host
    return f"{host}.{namespace}.{DOMAIN_SUFFIX}"


def matches(a: str, b: str) -> bool:
    """Istio's Name.Matches: the two names can denote a common host (wildcards on either side)."""
    if is_wildcard(a):
        if is_wildcard(b):
            shorter, longer = (a, b) if len(a) < len(b) else (b, a)
            return longer[1:].endswith(shorter[1:])
        return b.endswith(a[1:])
    if is_wildcard(b):
        return a.endswith(b[1:])
    return a == b


def subset_of(a: str, b: str) -> bool:
    """Istio's Name.SubsetOf: every host `a` denotes is also denoted by `b`."""
    if is_wildcard(b):
        return a[1:].endswith(b[1:]) if is_wildcard(a) else a.endswith(b[1:])
    return not is_wildcard(a) and a == b


def split_scoped(host: str) -> tuple[str | None, str]:
    """`ns/host` -> ('ns', 'host'); a plain host has no namespace part."""
    if "/" in host:
        ns, _, name = host.partition("/")
        return ns, name
    return None, host


def export_scopes(export_to: Sequence[str] | None, namespace: str) -> frozenset[str]:
    """Where a resource is visible: `*` (everywhere) or a set of namespaces. Empty exportTo means everywhere."""
    if not export_to or EXPORT_ALL in export_to:
        return frozenset({EXPORT_ALL})
    return frozenset(namespace if e == EXPORT_LOCAL else e for e in export_to if e != EXPORT_NONE)


def service_export_scopes(annotations: Mapping[str, str], namespace: str, default: Sequence[str]) -> frozenset[str]:
    """A Kubernetes Service's visibility, from its `networking.istio.io/exportTo` annotation, else `default`."""
    raw = annotations.get("networking.istio.io/exportTo", "")
    return export_scopes([e.strip() for e in raw.split(",") if e.strip()] or default, namespace)


def visible(scopes: frozenset[str], namespace: str) -> bool:
    return EXPORT_ALL in scopes or namespace in scopes


def consumer_namespaces(export_to: Sequence[str] | None, namespace: str) -> frozenset[str]:
    """The namespaces whose proxies apply a VirtualService/DestinationRule, for deciding what hosts it can see.

    Exported everywhere (or by default), its own namespace stands for them all, as in Istio's analyzers.
    """
    if not export_to:  # the common case, asked for every VirtualService and DestinationRule
        return frozenset({namespace})
    scopes = export_scopes(export_to, namespace)
    return frozenset({namespace}) if EXPORT_ALL in scopes else scopes


def selector_string(labels: Mapping[str, str] | None) -> str:
    """Kubernetes' canonical selector text (`a=b,c=d`, sorted), used as a grouping key as Istio does."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A label selector (match labels) selects `labels`; an empty selector selects everything."""
    return not selector or selector.items() <= labels.items()  # C-level; label values are strings, never None


def first_match(candidates: Iterable[str], host: str) -> str | None:
    return next((c for c in candidates if matches(c, host)), None)
