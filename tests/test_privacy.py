"""Client address, anonymisation and the daily visitor hash."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import RequestFactory, override_settings
from django.utils import timezone

from django_pageviews import salts, stats
from django_pageviews.client_ip import client_ip
from django_pageviews.models import VisitorSalt
from django_pageviews.privacy import anonymize_ip, stored_ip, visitor_hash

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
DAY = date(2025, 3, 14)

# Salts are read in a thread of their own, which sees only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("remote_addr", "expected"),
    [
        ("203.0.113.77", "203.0.113.77"),
        ("127.0.0.1", "127.0.0.1"),
        ("2001:db8:abcd:12:34::1", "2001:db8:abcd:12:34::1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::1", "::1"),
    ],
)
def test_client_ip_valid(remote_addr: str, expected: str) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR=remote_addr)
    assert client_ip(request) == expected


@pytest.mark.parametrize(
    "remote_addr",
    ["not-an-ip", "", "203.0.113.256", "10.0.0.0/8", "unknown", "[::1", "1.2.3.4:80:90"],
)
def test_client_ip_invalid_is_none(remote_addr: str) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR=remote_addr)
    assert client_ip(request) is None


def test_client_ip_missing_remote_addr_is_none() -> None:
    request = RequestFactory().get("/")
    del request.META["REMOTE_ADDR"]
    assert client_ip(request) is None


def test_client_ip_ignores_forwarding_headers() -> None:
    request = RequestFactory().get(
        "/", REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="203.0.113.1"
    )
    assert client_ip(request) == "198.51.100.9"


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("203.0.113.0", "203.0.113.0"),
        ("10.255.255.255", "10.255.255.0"),
        ("2001:db8:abcd:12:34::1", "2001:db8:abcd::"),
        ("2001:db8:abcd:ffff:ffff:ffff:ffff:ffff", "2001:db8:abcd::"),
        ("::1", "::"),
    ],
)
def test_anonymize_ip(ip: str, expected: str) -> None:
    assert anonymize_ip(ip) == expected


def test_stored_ip_anonymises_by_default() -> None:
    assert stored_ip("203.0.113.77") == "203.0.113.0"
    assert stored_ip("2001:db8:abcd:12:34::1") == "2001:db8:abcd::"


@override_settings(PAGEVIEW_STORE_IP=True)
def test_stored_ip_keeps_address_when_store_ip() -> None:
    assert stored_ip("203.0.113.77") == "203.0.113.77"
    assert stored_ip("2001:db8:abcd:12:34::1") == "2001:db8:abcd:12:34::1"


@pytest.mark.parametrize("store_ip", [False, True])
def test_stored_ip_none_stays_none(store_ip: bool) -> None:
    with override_settings(PAGEVIEW_STORE_IP=store_ip):
        assert stored_ip(None) is None


def test_visitor_hash_is_32_hex_chars() -> None:
    value = visitor_hash("203.0.113.77", UA, DAY)
    assert re.fullmatch(r"[0-9a-f]{32}", value) is not None


def test_visitor_hash_without_ip_is_32_hex_chars() -> None:
    value = visitor_hash(None, UA, DAY)
    assert re.fullmatch(r"[0-9a-f]{32}", value) is not None
    assert value != visitor_hash("203.0.113.77", UA, DAY)


def test_visitor_hash_stable_within_a_day() -> None:
    assert visitor_hash("203.0.113.77", UA, DAY) == visitor_hash("203.0.113.77", UA, DAY)


def test_visitor_hash_changes_on_next_day() -> None:
    today = visitor_hash("203.0.113.77", UA, DAY)
    tomorrow = visitor_hash("203.0.113.77", UA, DAY + timedelta(days=1))
    assert today != tomorrow
    # Going back is the same hash again: the salt is derived, not random.
    assert visitor_hash("203.0.113.77", UA, DAY) == today


def test_visitor_hash_differs_for_another_user_agent() -> None:
    assert visitor_hash("203.0.113.77", UA, DAY) != visitor_hash("203.0.113.77", UA + "x", DAY)


def test_visitor_hash_differs_for_another_ip() -> None:
    assert visitor_hash("203.0.113.77", UA, DAY) != visitor_hash("203.0.113.78", UA, DAY)


def test_visitor_hash_fields_are_separated() -> None:
    # Moving characters between the address and the user agent must not collide.
    assert visitor_hash("1.2.3.4", "5x", DAY) != visitor_hash("1.2.3.45", "x", DAY)


def test_visitor_hash_handles_undecodable_user_agent() -> None:
    ua = b"Mozilla/5.0 \xff\xfe".decode("utf-8", "surrogateescape")
    value = visitor_hash("203.0.113.77", ua, DAY)
    assert re.fullmatch(r"[0-9a-f]{32}", value) is not None


def test_the_salt_is_random_stored_and_shared_by_processes() -> None:
    today = timezone.localdate()
    first = visitor_hash("203.0.113.77", UA, today)
    (row,) = VisitorSalt.objects.filter(day=today)
    assert re.fullmatch(r"[0-9a-f]{64}", row.salt) is not None
    salts.forget_memory()  # as another process, which reads the salt from the database
    assert visitor_hash("203.0.113.77", UA, today) == first


def test_a_deleted_salt_cannot_be_recomputed() -> None:
    today = timezone.localdate()
    first = visitor_hash("203.0.113.77", UA, today)
    VisitorSalt.objects.all().delete()
    salts.forget_memory()
    assert visitor_hash("203.0.113.77", UA, today) != first


def test_salts_older_than_yesterday_are_deleted() -> None:
    today = timezone.localdate()
    for offset in range(-3, 2):
        VisitorSalt.objects.create(day=today + timedelta(days=offset), salt="ab" * 32)
    assert salts.forget_old_salts() == 2
    days = sorted(VisitorSalt.objects.values_list("day", flat=True))
    assert days == [today - timedelta(days=1), today, today + timedelta(days=1)]


def test_refresh_loads_yesterday_today_and_tomorrow() -> None:
    assert not salts.usable()
    loading = salts.refresh()
    assert loading is not None
    loading.result()
    assert salts.usable()
    assert salts.refresh() is None  # nothing more to load
    today = timezone.localdate()
    days = sorted(VisitorSalt.objects.values_list("day", flat=True))
    assert days == [today - timedelta(days=1), today, today + timedelta(days=1)]


def test_without_the_database_a_process_salt_is_used_until_it_answers(
    django_db_blocker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(salts, "RETRY_AFTER", 0.0)  # try the database again at once
    today = timezone.localdate()
    before = stats.snapshot().get(stats.SALT_ERROR, 0)
    with django_db_blocker.block():
        first = visitor_hash("203.0.113.77", UA, today)
        salts.refresh().result()  # type: ignore[union-attr]  # fails again: same salt
        assert visitor_hash("203.0.113.77", UA, today) == first
    assert stats.snapshot().get(stats.SALT_ERROR, 0) - before == 2
    assert not VisitorSalt.objects.exists()
    salts.refresh().result()  # type: ignore[union-attr]  # the database answers
    assert VisitorSalt.objects.filter(day=today).exists()
    assert visitor_hash("203.0.113.77", UA, today) != first  # the shared salt now


@override_settings(PAGEVIEW_ANONYMIZE_IP="omit")
def test_anonymize_ip_omit_stores_no_address() -> None:
    assert stored_ip("203.0.113.77") is None
    assert stored_ip("2001:db8:abcd:12:34::1") is None


@override_settings(PAGEVIEW_ANONYMIZE_IP="omit", PAGEVIEW_STORE_IP=True)
def test_store_ip_wins_over_anonymize_ip() -> None:
    assert stored_ip("203.0.113.77") == "203.0.113.77"


def test_throttle_key_is_the_keyed_blake2b_of_visitor_and_url() -> None:
    """Every process (and every version of the package) must compute the same key."""
    import hashlib

    from django.conf import settings as django_settings

    from django_pageviews.privacy import throttle_key

    secret = hashlib.blake2b(
        str(django_settings.SECRET_KEY).encode(), digest_size=32, person=b"pv-throt"
    ).digest()
    h = hashlib.blake2b(key=secret, digest_size=16)
    h.update(b"v203.0.113.9\0Mozilla\0/page/")
    assert throttle_key("v203.0.113.9\0Mozilla", "/page/") == h.hexdigest()
    assert throttle_key("a", "/x/") != throttle_key("a", "/y/")
