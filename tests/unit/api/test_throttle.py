"""Which budget a client address spends (pure)."""

from __future__ import annotations

from jobqueue.api.throttle import client_key


def test_ipv4_counts_per_address_and_ipv6_per_slash_64() -> None:
    assert client_key("192.0.2.7") == "addr:192.0.2.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") == "addr:2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == "addr:192.0.2.7"  # the IPv4 client it is


def test_no_or_odd_addresses_still_have_a_bounded_key() -> None:
    assert client_key(None) == client_key("") == "addr:unknown"
    assert client_key("testclient") == "addr:testclient"
    assert len(client_key("x" * 10_000)) <= 105
