"""The address policy ``is_blocked``: every special-purpose class, every IPv6 embedding."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genspot.backend.fetch import is_blocked

BLOCKED = {
    # IPv4
    "0.0.0.0": "this-network",
    "0.255.255.255": "this-network",
    "10.0.0.1": "private",
    "10.255.255.255": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.0.1": "private",
    "100.64.0.1": "shared-address-space",
    "100.127.255.254": "shared-address-space",
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "169.254.169.254": "link-local",
    "192.0.0.8": "ietf-protocol-assignments",
    "192.0.2.1": "documentation",
    "198.51.100.7": "documentation",
    "203.0.113.9": "documentation",
    "198.18.0.1": "benchmarking",
    "198.19.255.254": "benchmarking",
    "192.88.99.1": "6to4-relay-anycast",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    # IPv6
    "::": "unspecified",
    "::1": "loopback",
    "::127.0.0.1": "ipv4-compatible",
    "::8.8.8.8": "ipv4-compatible",
    "::ffff:0:808:808": "ipv4-translated",
    "::ffff:127.0.0.1": "loopback (via IPv4-mapped)",
    "::ffff:10.0.0.1": "private (via IPv4-mapped)",
    "::ffff:169.254.169.254": "link-local (via IPv4-mapped)",
    "::ffff:224.0.0.1": "multicast (via IPv4-mapped)",
    "64:ff9b::10.0.0.1": "private (via NAT64)",
    "64:ff9b::127.0.0.1": "loopback (via NAT64)",
    "64:ff9b:1::8.8.8.8": "nat64-local-use",
    "100::1": "discard-only",
    "2001::1": "teredo",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "teredo",
    "2001:2::1": "benchmarking",
    "2001:10::1": "orchid",
    "2001:20::1": "orchid-v2",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation",
    "2002:7f00:1::": "6to4",
    "2002:808:808::": "6to4",
    "5f00::1": "srv6-sids",
    "fc00::1": "unique-local",
    "fd12:3456::1": "unique-local",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "ff0e::1": "multicast",
    "4000::1": "reserved (outside 2000::/3)",
    "1::1": "reserved (outside 2000::/3)",
}

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.15.255.255",
    "172.32.0.0",
    "223.255.255.254",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2a00:1450:4001:81c::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public address reaches that public address
    "64:ff9b::8.8.8.8",  # DNS64/NAT64 synthesised public address
]


@pytest.mark.parametrize(("address", "reason"), sorted(BLOCKED.items()))
def test_special_purpose_addresses_are_blocked(address, reason):
    assert is_blocked(address) is not None
    assert is_blocked(address).startswith(reason)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert is_blocked(address) is None


def test_accepts_address_objects_and_rejects_non_addresses():
    assert is_blocked(ipaddress.ip_address("10.0.0.1")) == "private"
    with pytest.raises(ValueError):
        is_blocked("localhost")


def test_multicast_is_blocked_although_python_calls_some_of_it_global():
    assert ipaddress.ip_address("ff0e::1").is_global  # the reason is_global alone is not enough
    assert is_blocked("ff0e::1") == "multicast"


ipv4 = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
ipv6 = st.integers(min_value=0, max_value=2**128 - 1).map(ipaddress.IPv6Address)


@given(ipv4)
def test_ipv4_hidden_in_ipv6_gets_the_verdict_of_the_ipv4_address(address):
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(address))
    assert (is_blocked(mapped) is None) == (is_blocked(address) is None)
    assert (is_blocked(nat64) is None) == (is_blocked(address) is None)


@given(ipv4)
def test_deprecated_ipv6_transition_forms_are_always_blocked(address):
    for prefix in ("2002::", "::", "64:ff9b:1::"):
        embedded = int(address) << 80 if prefix == "2002::" else int(address)
        assert is_blocked(ipaddress.IPv6Address(int(ipaddress.IPv6Address(prefix)) | embedded))
    assert is_blocked(ipaddress.IPv6Address(int(ipaddress.IPv6Address("2001::")) | int(address)))


@given(st.one_of(ipv4, ipv6))
def test_whatever_python_calls_non_global_is_blocked(address):
    if not address.is_global:
        assert is_blocked(address) is not None


@given(st.one_of(ipv4, ipv6))
def test_every_address_gets_a_reason_or_none_and_never_raises(address):
    reason = is_blocked(address)
    assert reason is None or (isinstance(reason, str) and reason)
