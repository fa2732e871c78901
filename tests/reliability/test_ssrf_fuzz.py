"""Fuzz the fetcher's address policy: no request may reach a blocked address, however it is spelled.

Two independent witnesses watch every fetch: a Python audit hook that records the address of
every ``socket.connect`` this process makes, and a real listener on 127.0.0.1 that counts the
connections it accepts. Hypothesis generates addresses from the ranges the backend issue
names and writes them in every spelling a URL parser or resolver might accept.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
import threading
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from genspot.backend.errors import BlockedAddress, FetchError
from genspot.backend.fetch import FetchSettings, SafeFetcher, is_blocked

# The ranges the backend issue lists, written here independently of the implementation.
MUST_BLOCK_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    )
]
MUST_BLOCK_V6 = [ipaddress.ip_network(n) for n in ("::/128", "::1/128", "fe80::/10", "fc00::/7", "ff00::/8")]
PUBLIC_V4 = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "151.101.1.69"]

# --------------------------------------------------------------------------- connection witnesses

_connects: list[tuple] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _connects is not None:
        _connects.append(args[1])


sys.addaudithook(_audit)  # process-wide and permanent, but records only while a test switches it on


class Witness:
    """Records every socket.connect in this process and counts connections accepted on 127.0.0.1."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            self.accepted += 1
            connection.close()

    def __enter__(self) -> "Witness":
        global _connects
        _connects = []
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        global _connects
        self._stop.set()
        self._thread.join(2)
        self.listener.close()
        _connects = None

    @property
    def connected_to(self) -> list[str]:
        return [str(address[0]) for address in list(_connects or []) if isinstance(address, tuple)]

    def blocked_connects(self) -> list[str]:
        return [address for address in self.connected_to if _is_ip(address) and is_blocked(address.split("%")[0])]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def witness():
    with Witness() as watching:
        yield watching


# ------------------------------------------------------------------------------------ strategies


def _in(network: ipaddress._BaseNetwork) -> st.SearchStrategy:
    first, size = int(network.network_address), network.num_addresses
    kind = ipaddress.IPv4Address if network.version == 4 else ipaddress.IPv6Address
    return st.integers(0, size - 1).map(lambda offset: kind(first + offset))


blocked_v4 = st.one_of(*(_in(n) for n in MUST_BLOCK_V4))
blocked_v6 = st.one_of(*(_in(n) for n in MUST_BLOCK_V6))


def spellings_v4(address: ipaddress.IPv4Address) -> list[str]:
    """Ways to write an IPv4 address as a URL host that some parser or resolver accepts."""
    n, parts = int(address), [int(p) for p in str(address).split(".")]
    return [
        str(address),
        str(n),
        hex(n),
        hex(n).upper().replace("0X", "0x"),
        ".".join(f"0{p:o}" for p in parts),
        ".".join(hex(p) for p in parts),
        ".".join(f"{p:03d}" for p in parts),
        f"{parts[0]}.{parts[1]}.{parts[2] * 256 + parts[3]}",
        f"{parts[0]}.{(parts[1] << 16) + (parts[2] << 8) + parts[3]}",
        f"{address}.",
        f"[::ffff:{address}]",
        f"[::ffff:{n >> 16:x}:{n & 0xFFFF:x}]",
        f"[0:0:0:0:0:ffff:{address}]",
        f"[64:ff9b::{address}]",
        f"[2002:{n >> 16:x}:{n & 0xFFFF:x}::1]",
        f"[::{address}]",
        f"[::ffff:0:{address}]",
    ]


def _fetch_all(urls: Sequence[str], fetch_settings: FetchSettings, resolver=None) -> list[BaseException | object]:
    async def run() -> list:
        kwargs = {"resolver": resolver} if resolver else {}
        async with SafeFetcher(fetch_settings, **kwargs) as fetcher:
            return await asyncio.gather(*(fetcher.fetch(url) for url in urls), return_exceptions=True)

    return asyncio.run(run())


def _settings(port: int, **overrides) -> FetchSettings:
    values = {"connect_timeout": 0.5, "read_timeout": 0.5, "total_timeout": 1.5, "allowed_ports": (80, 443, port)}
    return FetchSettings(**{**values, **overrides})


# --------------------------------------------------------------------------------- the policy


@settings(max_examples=400, deadline=None)
@given(st.one_of(blocked_v4, blocked_v6))
def test_every_listed_range_is_blocked(address):
    assert is_blocked(address), f"{address} must be blocked"


@settings(max_examples=400, deadline=None)
@given(st.ip_addresses(v=4))
def test_ipv4_blocked_whenever_not_global_or_multicast(address):
    if not address.is_global or address.is_multicast:
        assert is_blocked(address)


@settings(max_examples=300, deadline=None)
@given(blocked_v4)
def test_ipv4_hidden_in_ipv6_is_blocked(address):
    for spelling in spellings_v4(address):
        if spelling.startswith("["):
            assert is_blocked(spelling.strip("[]")), f"{spelling} hides blocked {address}"


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(v=6))
def test_ipv6_blocked_whenever_not_global_unicast(address):
    if not address.is_global or address.is_multicast or address.ipv4_mapped or address.sixtofour:
        inner = address.ipv4_mapped
        if inner is not None and inner.is_global and not inner.is_multicast:
            return  # ::ffff:<public> is that public address
        assert is_blocked(address)


@pytest.mark.parametrize("address", PUBLIC_V4 + ["2606:4700:4700::1111", "64:ff9b::808:808"])
def test_public_addresses_pass(address):
    assert is_blocked(address) is None


# ------------------------------------------------------------------------- end to end, fetching


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(address=blocked_v4)
def test_no_spelling_of_a_blocked_ipv4_is_fetched(witness, address):
    urls = [f"http://{host}:{witness.port}/x.jpg" for host in spellings_v4(address)]
    outcomes = _fetch_all(urls, _settings(witness.port))
    for url, outcome in zip(urls, outcomes):
        assert isinstance(outcome, FetchError), f"{url} was fetched: {outcome!r}"
    assert witness.blocked_connects() == [] and witness.accepted == 0


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST", "localhost.", "[::1]", "[0:0:0:0:0:0:0:1]", "[::]", "0", "0.0.0.0", "[::ffff:7f00:1]",
     "%31%32%37.0.0.1", "127.0.0.1%2f", "0x7f.1", "017700000001", "[fe80::1%25lo]", "１２７.０.０.１"],
)
def test_loopback_spellings_refused_without_connecting(witness, host):
    url = f"http://{host}:{witness.port}/x.jpg"
    (outcome,) = _fetch_all([url], _settings(witness.port))
    assert isinstance(outcome, FetchError), f"{url} was fetched: {outcome!r}"
    assert witness.blocked_connects() == [] and witness.accepted == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(st.one_of(blocked_v4.map(str), st.sampled_from(PUBLIC_V4)), min_size=1, max_size=4))
def test_dns_answers_with_any_blocked_address_are_refused(witness, answers):
    assume(any(is_blocked(a) for a in answers))

    async def resolver(host: str, port: int) -> list[str]:
        return list(answers)

    (outcome,) = _fetch_all([f"http://images.example:{witness.port}/x.jpg"], _settings(witness.port), resolver)
    assert isinstance(outcome, BlockedAddress)
    assert witness.blocked_connects() == [] and witness.accepted == 0


def test_dns_answer_that_changes_after_the_check_is_never_dialled(witness):
    """Rebinding: the first lookup says public, every later one says loopback. Only the checked
    answer may be dialled, so the loopback listener must never see a connection."""
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["8.8.8.8"] if len(lookups) == 1 else ["127.0.0.1"]

    (outcome,) = _fetch_all([f"http://rebind.example:{witness.port}/x.jpg"], _settings(witness.port), rebinding)
    assert isinstance(outcome, FetchError)  # 8.8.8.8 is unreachable from this sandbox, or times out
    assert lookups == ["rebind.example"], "the host must be resolved exactly once"
    assert witness.accepted == 0 and witness.blocked_connects() == []
    assert all(address in ("8.8.8.8", "::ffff:8.8.8.8") for address in witness.connected_to[-1:])


@pytest.mark.parametrize(
    "target",
    ["http://10.0.0.1/x.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:a00:1]/x.jpg",
     "http://0.0.0.0:{port}/x.jpg", "http://[fd00::1]/x.jpg", "http://100.64.0.1/x.jpg", "http://2886729729/x.jpg",
     "file:///etc/passwd", "gopher://127.0.0.1:{port}/_x", "http://user:pw@8.8.8.8/x.jpg"],
)
def test_redirects_to_blocked_targets_are_refused(witness, target):
    """A loopback host (allowed here, as in the backend's tests) redirects to each target in turn."""
    from tests.reliability.hostile import HostileServer

    target = target.format(port=witness.port)
    with HostileServer() as server:
        fetch_settings = _settings(witness.port, allowed_ports=(80, 443, witness.port, server.port), allow_loopback=True)
        before = len(witness.connected_to)
        (outcome,) = _fetch_all([server.url(f"/redirect?to={target}")], fetch_settings)
    assert isinstance(outcome, FetchError), f"redirect to {target} was followed: {outcome!r}"
    hops = witness.connected_to[before:]
    assert all(address == "127.0.0.1" for address in hops), f"connected to {hops}"
    assert witness.accepted == 0
