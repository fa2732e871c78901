"""Which IP addresses a fetch may connect to: only globally routable unicast ones.

Python's ``ipaddress.is_global`` alone is not enough (depending on the version it calls
multicast, some IETF blocks and IPv4 hidden inside IPv6 "global"), so the policy is an
explicit table from the IANA special-purpose registries, with ``is_global`` only as a last
safety net. IPv4 embedded in IPv6 is judged as the IPv4 address it reaches (IPv4-mapped,
well-known NAT64 prefix); deprecated or local transition forms (IPv4-compatible, 6to4,
Teredo, local-use NAT64, SIIT) are refused outright.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK = "loopback"


def _table(*rows: tuple[str, str]) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(network), reason) for network, reason in rows)


_IPV4_BLOCKED = _table(
    ("0.0.0.0/8", "this-network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared-address-space (CGNAT)"),
    ("127.0.0.0/8", LOOPBACK),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "ietf-protocol-assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4-relay-anycast (deprecated)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # includes the broadcast address 255.255.255.255
)

_IPV6_BLOCKED = _table(
    ("::/128", "unspecified"),
    ("::1/128", LOOPBACK),
    ("::/96", "ipv4-compatible (deprecated)"),
    ("::ffff:0:0:0/96", "ipv4-translated (SIIT)"),
    ("64:ff9b:1::/48", "nat64-local-use"),
    ("100::/64", "discard-only"),
    ("2001::/32", "teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:10::/28", "orchid (deprecated)"),
    ("2001:20::/28", "orchid-v2"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "srv6-sids"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)

_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")


def is_blocked(address: str | IPAddress) -> str | None:
    """Why a connection to ``address`` must be refused, or None when it is public.

    The reason is a short category name ("private", "loopback", "multicast", ...);
    for IPv4 reached through IPv6 it names the embedding, e.g. "private (via IPv4-mapped)".
    Raises ValueError for something that is not an IP address.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        return _ipv6_reason(ip)
    return _ipv4_reason(ip)


def _ipv4_reason(ip: ipaddress.IPv4Address) -> str | None:
    for network, reason in _IPV4_BLOCKED:
        if ip in network:
            return reason
    return None if ip.is_global else "not-globally-routable"


def _ipv6_reason(ip: ipaddress.IPv6Address) -> str | None:
    for network, embedding in ((_IPV4_MAPPED, "IPv4-mapped"), (_NAT64_WELL_KNOWN, "NAT64")):
        if ip in network:
            inner = _ipv4_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            return f"{inner} (via {embedding})" if inner else None
    for network, reason in _IPV6_BLOCKED:
        if ip in network:
            return reason
    if ip not in _GLOBAL_UNICAST_V6:
        return "reserved (outside 2000::/3)"
    return None if ip.is_global else "not-globally-routable"
