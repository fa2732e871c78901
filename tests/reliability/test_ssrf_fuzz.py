"""Fuzz the fetcher's address policy: no request may reach a blocked address, however it is spelled.

Two independent witnesses watch every fetch: a Python audit hook that records the address of
every ``socket.connect`` this process makes, and a real listener on 127.0.0.1 that counts the
connections it accepts. Hypothesis generates addresses from the ranges the backend issue
names and writes them in every spelling a URL parser or resolver might accept.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from genspot.backend.errors import BlockedAddress, FetchError
from genspot.backend.fetch import is_blocked
from tests.reliability.cases import (
    LOOPBACK_HOSTS,
    MUST_BLOCK_V4,
    MUST_BLOCK_V6,
    PUBLIC_V4,
    REDIRECT_TARGETS,
    Witness,
    fetch_all,
    fetch_settings,
    spellings_v4,
)
from tests.reliability.hostile import HostileServer


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
    outcomes = fetch_all(urls, fetch_settings(witness.port))
    for url, outcome in zip(urls, outcomes):
        assert isinstance(outcome, FetchError), f"{url} was fetched: {outcome!r}"
    assert witness.blocked_connects() == [] and witness.accepted == 0


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_loopback_spellings_refused_without_connecting(witness, host):
    url = f"http://{host}:{witness.port}/x.jpg"
    (outcome,) = fetch_all([url], fetch_settings(witness.port))
    assert isinstance(outcome, FetchError), f"{url} was fetched: {outcome!r}"
    assert witness.blocked_connects() == [] and witness.accepted == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(st.one_of(blocked_v4.map(str), st.sampled_from(PUBLIC_V4)), min_size=1, max_size=4))
def test_dns_answers_with_any_blocked_address_are_refused(witness, answers):
    assume(any(is_blocked(a) for a in answers))

    async def resolver(host: str, port: int) -> list[str]:
        return list(answers)

    (outcome,) = fetch_all([f"http://images.example:{witness.port}/x.jpg"], fetch_settings(witness.port), resolver)
    assert isinstance(outcome, BlockedAddress)
    assert witness.blocked_connects() == [] and witness.accepted == 0


def test_dns_answer_that_changes_after_the_check_is_never_dialled(witness):
    """Rebinding: the first lookup says public, every later one says loopback. Only the checked
    answer may be dialled, so the loopback listener must never see a connection."""
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["8.8.8.8"] if len(lookups) == 1 else ["127.0.0.1"]

    before = len(witness.connected_to)
    (outcome,) = fetch_all([f"http://rebind.example:{witness.port}/x.jpg"], fetch_settings(witness.port), rebinding)
    assert isinstance(outcome, FetchError)  # 8.8.8.8 is unreachable from this sandbox, or times out
    assert lookups == ["rebind.example"], "the host must be resolved exactly once"
    assert witness.accepted == 0 and witness.blocked_connects() == []
    dialled = witness.connected_to[before:]
    assert dialled and all(address in ("8.8.8.8", "::ffff:8.8.8.8") for address in dialled), f"dialled {dialled}"


@pytest.mark.parametrize("target", REDIRECT_TARGETS)
def test_redirects_to_blocked_targets_are_refused(witness, target):
    """A loopback host (allowed here, as in the backend's tests) redirects to each target in turn."""
    target = target.format(port=witness.port)
    with HostileServer() as server:
        allowed = fetch_settings(witness.port, allowed_ports=(80, 443, witness.port, server.port), allow_loopback=True)
        before = len(witness.connected_to)
        (outcome,) = fetch_all([server.url(f"/redirect?to={target}")], allowed)
    assert isinstance(outcome, FetchError), f"redirect to {target} was followed: {outcome!r}"
    hops = witness.connected_to[before:]
    assert hops and all(address == "127.0.0.1" for address in hops), f"connected to {hops}"  # the redirecting host, only
    assert witness.accepted == 0
