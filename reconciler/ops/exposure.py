"""Who may reach the reconciler's ports. Plain ADS and the admin port have no authentication, so their protection is
the address: loopback reaches only this machine. Binding elsewhere is the operator's choice (a warning says what it
exposes: /status, /metrics and the mesh page, which show the policy's routing and the proxies' states but no key or
config dump), with two exceptions: `/debug/*` (every proxy's full config) is never served to a peer that is not
loopback, whatever the bind address, and private keys (Gateway credentials) are never put on plain ADS that is not
loopback (`serve` refuses to start; `--xds-tls` authenticates every proxy instead).

The address alone does not keep a browser out: DNS rebinding lets a web page point its own name at 127.0.0.1 and
read this machine's loopback ports as its own origin. The browser then still sends the page's name as Host, so the
admin server answers only Hosts that no rebinding can produce (`host_allowed`), as geth's `--http.vhosts`
(node/rpcstack.go, virtualHostHandler) and Vite's `server.allowedHosts` do."""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Collection

_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped, `::ffff:127.0.0.1`) and the standard loopback names. Anything
    else, including a wildcard (`0.0.0.0`, `::`, ``) or a host name that would need DNS, counts as exposed."""
    host = host.strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def host_name(header: str) -> str:
    """The host of a Host header, lower-cased, without brackets or port (`[::1]:15014` -> `::1`); "" if none."""
    try:
        return urllib.parse.urlsplit(f"//{header}").hostname or ""
    except ValueError:  # an unbalanced bracket
        return ""


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_allowed(header: str, allowed: Collection[str] = ()) -> bool:
    """Whether a request naming `header` as its Host may be answered: an IP address (a page loaded from an IP is
    same-origin only with that IP, so rebinding cannot send one: this is what probes and scrapers by pod IP send),
    `localhost` (`kubectl port-forward`, a browser on the machine), or a name the operator listed in `allowed`
    (`serve --admin-allowed-host`, e.g. a Service's name)."""
    host = host_name(header)
    return bool(host) and (is_ip_literal(host) or is_loopback(host) or host in allowed)


def bind_warnings(*, xds_host: str, admin_host: str, xds_tls: bool = False) -> list[str]:
    """What `meshward serve` warns about before it listens on an address other machines can reach."""
    warnings = []
    if not xds_tls and not is_loopback(xds_host):
        warnings.append(f"the ADS port is bound to {xds_host or '*'}, not loopback: any client that reaches it can "
                        "read every proxy's config and open streams: plain ADS has no authentication (serve --xds-tls adds it)")
    if not is_loopback(admin_host):
        warnings.append(f"the admin port is bound to {admin_host or '*'}, not loopback: /status, /metrics, the mesh "
                        "page (/mesh) and /webhook are reachable from other machines (/debug/* stays refused to them)")
    return warnings


def plain_keys_refusal(*, xds_host: str, xds_tls: bool, credentials: list[str]) -> str | None:
    """Why `serve` must not start, or None: Gateway credentials (private keys, sent over SDS) are served over plain
    ADS only on loopback, where nobody else can ask for them; elsewhere ADS must authenticate (`--xds-tls`)."""
    if xds_tls or not credentials or is_loopback(xds_host):
        return None
    return (f"{' and '.join(credentials)} put private keys in proxies' configs, and ADS on {xds_host or '*'} is "
            "plain: anyone who reaches it could read them. Add --xds-tls (proxies then authenticate with their "
            "agent's certificate), or bind --xds-address to loopback")
