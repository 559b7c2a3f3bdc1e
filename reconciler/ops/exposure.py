"""Who may reach the reconciler's ports. There is no authentication or TLS on ADS or the admin port yet, so the only
protection is the address: loopback reaches only this machine. Binding elsewhere is the operator's choice (a
warning says what it exposes), but `/debug/*` (every proxy's full config) is never served to a peer that is not
loopback, whatever the bind address."""

from __future__ import annotations

import ipaddress

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


def bind_warnings(*, xds_host: str, admin_host: str) -> list[str]:
    """What `meshward serve` warns about before it listens on an address other machines can reach."""
    warnings = []
    if not is_loopback(xds_host):
        warnings.append(f"the ADS port is bound to {xds_host or '*'}, not loopback: any client that reaches it can "
                        "read every proxy's config and open streams; there is no authentication or TLS yet")
    if not is_loopback(admin_host):
        warnings.append(f"the admin port is bound to {admin_host or '*'}, not loopback: /status, /metrics and "
                        "/webhook are reachable from other machines (/debug/* stays refused to them)")
    return warnings
