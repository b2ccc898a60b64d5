"""Raw rows in bulk (COPY on PostgreSQL, executemany elsewhere) hold what the ORM would
have stored, and the duplicate check finds stored ids in any form an event may carry."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from django_pageviews.db_errors import is_data_error
from django_pageviews.events import PageViewEvent, Target
from django_pageviews.models import PageView
from django_pageviews.raw_rows import insert_raw_rows, stored_event_ids
from django_pageviews.resolve import resolve_targets

pytestmark = pytest.mark.django_db

PAGE = Target("/raw/", "raw-page", "", "", "")


def events(*ips: str | None, timestamp: float | None = None) -> list[PageViewEvent]:
    moment = time.time() if timestamp is None else timestamp
    return [PageViewEvent(uuid.uuid4().hex, moment, PAGE, ip, "UA\t1", "h" * 32) for ip in ips]


def insert(batch: list[PageViewEvent]) -> None:
    with transaction.atomic():
        insert_raw_rows(batch, resolve_targets({e.target for e in batch}), "default")


@pytest.mark.parametrize("use_tz", [True, False])
def test_rows_hold_what_the_orm_would_store(use_tz: bool) -> None:
    with override_settings(USE_TZ=use_tz, TIME_ZONE="Pacific/Kiritimati"):
        batch = events("203.0.113.0", "2001:0db8:0000::", None, "", timestamp=1_700_000_000.25)
        insert(batch)
        aware = dt.datetime.fromtimestamp(1_700_000_000.25, tz=dt.UTC)
        moment = aware if use_tz else timezone.make_naive(aware)
        orm = [
            PageView(
                url="/orm/",
                view_name="raw-page",
                ip_address=e.ip_address,
                user_agent=e.user_agent,
                timestamp=moment,
                event_id=uuid.uuid4(),
                visitor_hash=e.visitor_hash,
            )
            for e in batch
        ]
        PageView.objects.bulk_create(orm)
        fields = ("view_name", "ip_address", "user_agent", "timestamp", "visitor_hash")
        ours = list(PageView.objects.filter(url="/raw/").order_by("id").values_list(*fields))
        theirs = list(PageView.objects.filter(url="/orm/").order_by("id").values_list(*fields))
    assert ours == theirs
    assert [r[1] for r in ours] == ["203.0.113.0", "2001:db8::", None, None]
    stored = PageView.objects.filter(url="/raw/").values_list("event_id", flat=True)
    assert sorted(i.hex for i in stored) == sorted(e.event_id for e in batch)
    assert PageView.objects.filter(url="/raw/", content_type=None, object_id=None).count() == 4


def test_stored_ids_are_found_in_any_form_and_unreadable_ones_ignored() -> None:
    batch = events("192.0.2.0", "192.0.2.0")
    insert(batch)
    upper, dashed = batch[0].event_id.upper(), str(uuid.UUID(batch[1].event_id))
    asked = [upper, dashed, uuid.uuid4().hex, "not-an-id", ""]
    assert stored_event_ids(asked, "default") == {upper, dashed}
    assert stored_event_ids([], "default") == set()


def test_an_event_id_no_column_can_hold_is_refused_for_its_data() -> None:
    bad = events("192.0.2.0")[0]._replace(event_id="not-an-id")
    with pytest.raises(Exception) as refused:
        insert([bad])
    assert is_data_error(refused.value)
    assert not PageView.objects.exists()


def test_rows_past_one_chunk_keep_every_value() -> None:
    """More rows than one COPY chunk, timestamps at every fraction of a second (each
    stored as datetime.fromtimestamp rounds it), event ids in any UUID form, an object's
    target, an address with a prefix length, an empty user agent and a tab in one."""
    from tests.models import Article

    article = Article.objects.create(title="A", slug="a")
    target = Target("/a/", "", "tests.article", "slug", "a")
    forms: list[Callable[[str], str]] = [str.lower, str.upper, lambda h: str(uuid.UUID(h))]
    batch = [
        PageViewEvent(
            forms[i % 3](uuid.uuid4().hex),
            1_700_000_000 + i * 0.0000007 + (i % 7) / 3,
            target if i % 2 else PAGE,
            ["198.51.100.7", "2001:db8::1", None, "192.0.2.0/24"][i % 4],
            "" if i % 5 == 0 else f"UA\t{i % 3}",
            f"{i:032x}",
        )
        for i in range(2_345)
    ]
    insert(batch)
    rows = PageView.objects.values_list(
        "event_id", "timestamp", "url", "object_id", "content_type_id", "ip_address"
    )
    stored = {r[0]: r[1:] for r in rows}
    ua = dict(PageView.objects.values_list("event_id", "user_agent"))
    assert len(stored) == len(batch)
    for e in batch:
        key = uuid.UUID(e.event_id)
        moment, url, object_id, content_type_id, ip = stored[key]
        assert moment == dt.datetime.fromtimestamp(e.timestamp, tz=dt.UTC)
        assert url == e.target.url
        assert (object_id, content_type_id is not None) == (
            (str(article.pk), True) if e.target is target else (None, False)
        )
        assert ua[key] == e.user_agent
        if e.ip_address != "192.0.2.0/24":  # the ORM reads back what the column holds
            assert ip == e.ip_address
