"""Pages whose object cannot be looked up are counted by URL, never fail their batch
(issue #10, item 2): a field the model lacks, a slug_field renamed while views wait, a
value the field cannot hold. On both pipelines, against the real database."""

from __future__ import annotations

import time
import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import Sum

from django_pageviews.events import PK, PageViewEvent, Target
from django_pageviews.manual import record_view
from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.recorder import flush
from django_pageviews.redis.drain import drain_redis
from django_pageviews.resolve import resolve_targets
from tests.conftest import asgi_requests, distinct_visitors
from tests.models import Article, Document, Ticket
from tests.views import DocumentByCode

pytestmark = pytest.mark.django_db(transaction=True)


def write_all(pipeline: str) -> None:
    """Write everything buffered; a failure of the writer fails the test."""
    if pipeline == "redis":
        assert drain_redis(time_budget=None).failed == 0
    assert flush() >= 0
    from django_pageviews.buffer import buffer

    assert buffer.last_error is None, buffer.last_error
    assert buffer.pending_count() == 0


def daily(url: str) -> list[tuple[int | None, str, int]]:
    rows = PageViewDaily.objects.filter(url=url)
    return list(rows.values_list("content_type_id", "object_id", "views"))


def total() -> int:
    return PageViewDaily.objects.aggregate(n=Sum("views"))["n"] or 0


def test_a_list_at_a_slug_url_the_model_lacks_is_counted_by_url(pipeline: str) -> None:
    """ListView(model=Group) at category/<slug:slug>/ among good views: every view is
    counted, the category views by URL (Group has no slug field)."""
    article = Article.objects.create(title="A", slug="a")
    Group.objects.create(name="staff")
    visitors = distinct_visitors(5)
    requests = [("GET", f"/articles/{article.pk}/", h) for h in visitors]
    requests += [("GET", "/category/news/", h) for h in visitors[:3]]
    requests += [("GET", "/plain/", h) for h in visitors[:4]]
    assert {r.status_code for r in asgi_requests(requests)} == {200}
    write_all(pipeline)
    ct = ContentType.objects.get_for_model(Article).pk
    assert daily(f"/articles/{article.pk}/") == [(ct, str(article.pk), 5)]
    assert daily("/category/news/") == [(None, "", 3)]
    assert daily("/plain/") == [(None, "", 4)]
    assert total() == 12
    assert PageView.objects.count() == 12
    assert PageView.get_view_count(url="/category/news/") == 3
    assert PageView.get_view_count(view_name="category") == 3


def test_values_a_field_cannot_hold_are_counted_by_url(pipeline: str) -> None:
    """A text for an integer slug_field, a text for an integer pk, a slug for a
    many-to-many slug_field: counted by URL; the good values beside them are found."""
    ticket = Ticket.objects.create(number=7)
    article = Article.objects.create(title="A", slug="a")
    pages = [
        "/tickets/abc/",
        "/tickets/7/",
        "/tickets/99999999999999999999999/",
        "/article-text/abc/",
        f"/article-text/{article.pk}/",
        "/group-perm/x/",
    ]
    visitors = distinct_visitors(2)
    asgi_requests([("GET", page, h) for page in pages for h in visitors])
    write_all(pipeline)
    assert total() == 12
    assert daily("/tickets/abc/") == [(None, "", 2)]
    assert daily("/tickets/99999999999999999999999/") == [(None, "", 2)]
    ticket_ct = ContentType.objects.get_for_model(Ticket).pk
    assert daily("/tickets/7/") == [(ticket_ct, str(ticket.pk), 2)]
    assert daily("/article-text/abc/") == [(None, "", 2)]
    article_ct = ContentType.objects.get_for_model(Article).pk
    assert daily(f"/article-text/{article.pk}/") == [(article_ct, str(article.pk), 2)]
    assert daily("/group-perm/x/") == [(None, "", 2)]


def test_a_slug_field_renamed_while_views_wait(
    pipeline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Views recorded by the old code (slug_field "old_code") are written by the new one,
    whose model has no such field: counted by URL, with the views beside them."""
    doc = Document.objects.create(code="d1")
    with monkeypatch.context() as m:
        m.setattr(DocumentByCode, "slug_field", "old_code")
        asgi_requests([("GET", "/docs/d1/", h) for h in distinct_visitors(3)])
    asgi_requests([("GET", "/docs/d1/", h) for h in distinct_visitors(6)[3:]])
    write_all(pipeline)
    ct = ContentType.objects.get_for_model(Document).pk
    assert sorted(daily("/docs/d1/"), key=str) == sorted(
        [(None, "", 3), (ct, str(doc.pk), 3)], key=str
    )


def test_most_viewed_of_a_model_whose_slug_fields_are_no_columns(pipeline: str) -> None:
    """The URLconf looks groups up by "slug" (no such field) and "permissions" (many to
    many): the most-viewed list ranks groups by pk alone, written and pending."""
    staff, editors = Group.objects.create(name="staff"), Group.objects.create(name="e")
    ct = ContentType.objects.get_for_model(Group).pk
    for group, n in ((staff, 2), (editors, 3)):
        for _ in range(n):
            assert record_view(f"/g/{group.pk}/", None, ct, group.pk) is not None
    write_all(pipeline)
    assert record_view(f"/g/{staff.pk}/", None, ct, staff.pk) is not None
    assert record_view(f"/g/{staff.pk}/", None, ct, staff.pk) is not None
    assert PageView.get_popular_objects(Group, limit=5) == [(staff, 4), (editors, 3)]


def test_resolution_never_raises_for_a_target() -> None:
    article = Article.objects.create(title="A", slug="a")
    permission = Permission.objects.first()
    assert permission is not None
    ct = permission.content_type_id
    bad = [
        Target("/1/", "", "auth.group", "slug", "x"),  # no such field
        Target("/2/", "", "auth.group", "permissions", "x"),  # many-to-many
        Target("/3/", "", "auth.user", "groups", "1"),  # many-to-many
        Target("/4/", "", "auth.permission", "content_type", "abc"),  # a relation, bad key
        Target("/5/", "", "tests.article", PK, "abc"),  # integer pk
        Target("/6/", "", "tests.article", PK, "9" * 30),  # out of range
        Target("/7/", "", "tests.document", PK, "not-a-uuid"),
        Target("/8/", "", "tests.ticket", "number", "abc"),
        Target("/9/", "", "tests.ticket", "number", ""),
        Target("/10/", "", "auth.group", "user", "1"),  # reverse relation
        Target("/11/", "", "tests.article", "get_view_count", "1"),  # not a field
    ]
    by_relation = Target("/g1/", "", "auth.permission", "content_type", str(ct))
    good = {
        by_relation,
        Target("/g2/", "", "tests.article", PK, f"00{article.pk}"),  # the same number
        Target("/g3/", "", "tests.article", "slug", "a"),
    }
    resolved = resolve_targets({*bad, *good})
    assert {t: resolved[t] for t in bad} == dict.fromkeys(bad, (None, ""))
    article_ct = ContentType.objects.get_for_model(Article).pk
    permission_ct = ContentType.objects.get_for_model(Permission).pk
    assert resolved[by_relation][0] == permission_ct  # a permission of that content type
    assert resolved[Target("/g2/", "", "tests.article", PK, f"00{article.pk}")] == (
        article_ct,
        str(article.pk),
    )
    assert resolved[Target("/g3/", "", "tests.article", "slug", "a")] == (
        article_ct,
        str(article.pk),
    )


def test_a_bad_target_in_the_in_process_buffer_never_stops_the_writer() -> None:
    """The writer used to retry such a batch first, forever: every later view queued
    behind it."""
    from django_pageviews.buffer import buffer

    bad = Target("/category/x/", "category", "auth.group", "slug", "x")
    for _ in range(3):
        buffer.add(PageViewEvent(uuid.uuid4().hex, time.time(), bad, None, "ua", ""))
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(2)])
    assert flush() == 5
    assert buffer.last_error is None
    assert total() == 5
