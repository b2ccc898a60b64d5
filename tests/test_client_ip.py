"""client_ip.py's fast paths answer what ``ipaddress`` answers."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import RequestFactory, override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from django_pageviews.client_ip import _in_trusted_networks, client_ip, is_ipv4, parse_ip
from django_pageviews.privacy import _anonymize, anonymize_ip


def ipaddress_says_ipv4(text: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(text)) == text
    except ValueError:
        return False


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4",
        "0.0.0.0",
        "255.255.255.255",
        "01.2.3.4",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "1..3.4",
        "",
        "١.2.3.4",
        "1.2.3.4 ",
        "+1.2.3.4",
        "1.2.3.00",
        "1.2.3.0x1",
        "².2.3.4",
    ],
)
def test_is_ipv4_as_ipaddress(text: str) -> None:
    assert is_ipv4(text) == ipaddress_says_ipv4(text)


@settings(max_examples=500)
@given(st.text(alphabet="0123456789.²١ x", max_size=16))
def test_is_ipv4_as_ipaddress_generated(text: str) -> None:
    assert is_ipv4(text) == ipaddress_says_ipv4(text)


@settings(max_examples=300)
@given(st.ip_addresses(v=4))
def test_ipv4_parsed_and_anonymised_as_ipaddress(address: ipaddress.IPv4Address) -> None:
    text = str(address)
    assert parse_ip(text) == text
    assert anonymize_ip(text) == _anonymize(text)


@given(st.ip_addresses(v=6))
def test_ipv6_still_parsed_by_ipaddress(address: ipaddress.IPv6Address) -> None:
    assert parse_ip(str(address)) == str(address)
    assert parse_ip(str(address).upper()) == str(address)


def test_trusted_proxies_take_effect_when_changed() -> None:
    """The trusted-peer answers are cached: a changed setting drops them."""
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    with override_settings(PAGEVIEW_TRUSTED_PROXIES=["10.0.0.0/8"]):
        assert client_ip(request) == "203.0.113.9"
    with override_settings(PAGEVIEW_TRUSTED_PROXIES=["192.168.0.0/16"]):
        assert client_ip(request) == "10.0.0.1"
    with override_settings(PAGEVIEW_TRUSTED_PROXIES=["10.0.0.0/8"]):
        assert client_ip(request) == "203.0.113.9"


@settings(max_examples=300, deadline=None)
@given(
    st.ip_addresses(v=4),
    st.lists(st.tuples(st.ip_addresses(), st.integers(0, 128)), min_size=1, max_size=3),
)
def test_trusted_ipv4_membership_as_ipaddress(
    address: ipaddress.IPv4Address,
    nets: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]],
) -> None:
    networks = [
        str(ipaddress.ip_network(f"{a}/{min(p, a.max_prefixlen)}", strict=False)) for a, p in nets
    ]
    expected = any(address in ipaddress.ip_network(n) for n in networks)
    with override_settings(PAGEVIEW_TRUSTED_PROXIES=networks):
        assert _in_trusted_networks(str(address)) is expected
