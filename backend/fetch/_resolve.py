"""Resolve a host once and check every address it resolves to."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence

from genspot.backend.errors import BlockedAddress, FetchError, FetchTimeout

from ._addresses import LOOPBACK, IPAddress, is_blocked

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``await resolver(host, port)`` -> IP address strings. Injectable so tests can answer."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), run off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, including legacy IPv4 spellings
    (``2130706433``, ``0x7f.1``, ``127.1``) that getaddrinfo would also accept."""
    try:
        return ipaddress.ip_address(host.replace("%25", "%"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None


async def resolve_public(
    host: str, port: int, resolver: Resolver, *, allow_loopback: bool, timeout: float
) -> tuple[str, ...]:
    """Every address ``host`` resolves to, after checking each one; raise if any is blocked.

    One blocked answer refuses the whole host: a name that mixes public and private
    answers is an attack (or a misconfiguration), never something to work around.
    """
    literal = literal_address(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        addresses = await _lookup(host, port, resolver, timeout)
    for address in addresses:
        reason = is_blocked(address)
        if reason and not (allow_loopback and reason == LOOPBACK):
            named = str(address) if host == str(address) else f"{host} ({address})"
            raise BlockedAddress(f"{named} is not a public address ({reason})")
    return tuple(dict.fromkeys(str(address) for address in addresses))


async def _lookup(host: str, port: int, resolver: Resolver, timeout: float) -> list[IPAddress]:
    try:
        async with asyncio.timeout(timeout):
            answers = await resolver(host, port)
    except TimeoutError as exc:
        raise FetchTimeout(f"looking up {host} took longer than {timeout:g}s") from exc
    except (OSError, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from exc
    try:
        addresses = [ipaddress.ip_address(answer) for answer in answers]
    except ValueError as exc:
        raise FetchError(f"resolver returned a non-address for {host}: {exc}") from exc
    if not addresses:
        raise FetchError(f"{host} has no addresses")
    return addresses
