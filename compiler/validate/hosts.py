"""Names and addresses as Istio validates them: DNS labels, wildcard domains, namespace/host pairs, IPs, CIDRs,
ports, Kubernetes labels and exportTo. Each check returns an error message, or None when the value is valid."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping

DNS1123_LABEL = re.compile(r"^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$")  # Istio's labels package allows uppercase
_WILDCARD_LABEL = re.compile(r"^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")  # only forms ipaddress accepts (no leading zeros)


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(DNS1123_LABEL.match(value))


def dns1123_labels(domain: str) -> str | None:
    """Every dot-separated label valid, the top-level one not all-numeric; a trailing dot is allowed."""
    parts = domain.split(".")
    if parts[-1].isdigit():
        return f'domain name "{domain}" invalid (top level domain "{parts[-1]}" cannot be all-numeric)'
    for index, label in enumerate(parts):
        if index == len(parts) - 1 and label == "" and index > 0:
            return None
        if not is_dns1123_label(label):
            return f'domain name "{domain}" invalid (label "{label}" invalid)'
    return None


def wildcard_domain(domain: str) -> str | None:
    """A FQDN or short name whose first label may be a wildcard (`*`, `*.example.com`, `*-foo.example.com`)."""
    if not domain:
        return "empty domain name not allowed"
    if len(domain) > 255:
        return f'domain name "{domain[:40]}..." too long (max 255)'
    first, _, rest = domain.partition(".")
    if len(first) > 63 or not _WILDCARD_LABEL.match(first):
        return f'domain name "{domain}" invalid (label "{first}" invalid)'
    return dns1123_labels(rest) if "." in domain else None


def fqdn(domain: str) -> str | None:
    """A host without wildcards."""
    if "*" in domain:
        return f'"{domain}" cannot contain a wildcard'
    return wildcard_domain(domain)


def not_an_ip(host: str) -> str | None:
    return f'"{host}" is an IP address; a host must be a domain name' if is_ip(host) else None


def namespaced_host(value: str, *, allow_tilde: bool = False) -> str | None:
    """`namespace/dnsName` as Gateway servers and Sidecar egress hosts take it (`*/`, `./`, `~/` namespaces)."""
    namespace, sep, host = value.partition("/")
    if not sep:
        return f'host "{value}" must be of the form namespace/dnsName'
    allowed = ("*", ".") + (("~",) if allow_tilde else ())
    if namespace not in allowed and not is_dns1123_label(namespace):
        return f'host "{value}": namespace "{namespace}" must be "*", "." or a DNS-1123 label'
    if host == "*":
        return None
    return wildcard_domain(host)


def is_ip(value: str) -> bool:
    if _PLAIN_IPV4.fullmatch(value):  # exactly the IPv4 forms ipaddress accepts, without its object construction
        return True
    if ":" not in value:  # nor IPv6 (at least two colons): most hosts are names, and a failed parse costs most
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def ip_or_cidr(value: str) -> str | None:
    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        return f'"{value}" is not a valid IP address or CIDR block'
    return None


def port(number: int | None) -> str | None:
    if number is None or not 1 <= number <= 65535:
        return f"port number {number} must be between 1 and 65535"
    return None


def label_selector(labels: Mapping[str, str] | None, *, wildcards: bool = False,
                   problem: Callable[[str, str, bool], str | None] | None = None) -> list[tuple[str, str]]:
    """(key, problem) pairs for invalid Kubernetes label keys and values (`problem`: `label_problem`, or a memo
    of it)."""
    out: list[tuple[str, str]] = []
    if not labels:
        return out
    check = problem or label_problem
    for key, value in labels.items():
        found = check(key, value, wildcards)
        if found:
            out.append((key, found))
    return out


def label_problem(key: str, value: str, wildcards: bool) -> str | None:
    problem = label_key(key) or label_value(value)
    if problem is None and not wildcards and ("*" in key or "*" in value):
        problem = f'wildcard not allowed in label "{key}: {value}"'
    return problem


def label_key(key: str) -> str | None:
    if not key:
        return "label key must not be empty"
    prefix, sep, name = key.rpartition("/")
    if sep and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return f'label key "{key}": prefix must be a DNS-1123 subdomain'
    if len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return f'label key "{key}" is not a valid label name'
    return None


def label_value(value: str) -> str | None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return f'label value "{value}" is not valid (63 characters of [A-Za-z0-9._-], alphanumeric at both ends)'
    return None


def export_to(values: Iterable[str] | None) -> list[tuple[int, str]]:
    """(index, problem) for exportTo entries: '.', '*' or namespace names, no duplicates, '*' alone."""
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    items = list(values or [])
    for index, value in enumerate(items):
        if value in seen:
            out.append((index, f'duplicate exportTo entry "{value}"'))
        elif value not in (".", "*") and not is_dns1123_label(value):
            out.append((index, f'exportTo entry "{value}" must be ".", "*" or a namespace name'))
        elif value == "*" and len(items) > 1:
            out.append((index, 'exportTo "*" cannot be combined with other entries'))
        seen.add(value)
    return out
