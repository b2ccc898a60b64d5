"""The stats API through Django's test client, over views recorded through the package's
own paths: exact numbers on both pipelines, pending and flushed; who may read; strict
parameters; cache headers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.core import signing
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings

from django_pageviews.api.access import STATS_PERMISSION
from django_pageviews.api.tokens import MAX_LIFETIME, mint
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from tests.conftest import asgi_requests
from tests.history import article_target, days_ago, record_pending, store, visit
from tests.models import Article, Document

pytestmark = pytest.mark.django_db(transaction=True)
flushed_or_not = pytest.mark.parametrize("flushed", [False, True], ids=["pending", "flushed"])

DAILY = "/pageviews/api/daily/"
TOTAL = "/pageviews/api/total/"
TOP_PAGES = "/pageviews/api/top/pages/"
TOP_OBJECTS = "/pageviews/api/top/objects/"
TOP_VIEWS = "/pageviews/api/top/views/"
# One valid request per endpoint (the article's pk is filled in).
EVERY_ENDPOINT = [
    f"{DAILY}?url=/articles/{{pk}}/",
    f"{TOTAL}?model=tests.article&pk={{pk}}",
    f"{TOP_PAGES}?limit=5",
    f"{TOP_OBJECTS}?model=tests.article",
    f"{TOP_VIEWS}?days=7",
]


@pytest.fixture
def article() -> Article:
    return Article.objects.create(title="First", slug="first")


def user(name: str, staff: bool = True, permitted: bool = True, **extra: Any) -> User:
    person = User.objects.create_user(name, password="x", is_staff=staff, **extra)
    if permitted:
        app_label, codename = STATS_PERMISSION.split(".")
        person.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return person


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(user("staff"))
    return client


def get(client: Client, url: str, **headers: str) -> tuple[int, dict[str, Any]]:
    response = client.get(url, headers=headers)
    return response.status_code, json.loads(response.content)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# -- numbers -------------------------------------------------------------------------------


@flushed_or_not
def test_daily_series_of_a_url_an_object_and_a_view_name(
    pipeline: str, article: Article, staff: Client, flushed: bool
) -> None:
    target = article_target(article)
    store(target, 2, age=2)  # written by a drain two days ago
    record_pending(target, 1, age=1)  # made yesterday, still in the pipeline
    visit(f"/articles/{article.pk}/", 3)  # today, through the middleware
    if flushed:
        flush()
    days = [days_ago(n).isoformat() for n in (2, 1, 0)]
    expected = [{"day": d, "views": n} for d, n in zip(days, [2, 1, 3], strict=True)]
    for query, subject in [
        (f"url=/articles/{article.pk}/", {"url": f"/articles/{article.pk}/"}),
        (f"url=/articles/{article.pk}", {"url": f"/articles/{article.pk}/"}),  # as tracked
        (f"model=tests.article&pk={article.pk}", {"model": "tests.article", "pk": str(article.pk)}),
        ("view=article-detail", {"view": "article-detail"}),
    ]:
        status, body = get(staff, f"{DAILY}?{query}&days=3")
        assert status == 200, body
        assert body == {"subject": subject, "days": 3, "total": 6, "daily": expected}
    status, body = get(staff, f"{DAILY}?view=article-detail")
    assert (status, body["days"], len(body["daily"]), body["total"]) == (200, 30, 30, 6)
    assert body["daily"][-1] == {"day": days[-1], "views": 3}


@flushed_or_not
def test_totals_all_time_last_days_and_since(
    pipeline: str, article: Article, staff: Client, flushed: bool
) -> None:
    target = article_target(article)
    store(target, 40, age=10)
    record_pending(target, 5, age=1)
    visit(f"/articles/{article.pk}/", 2)
    if flushed:
        flush()
    for subject in (f"url=/articles/{article.pk}/", f"model=tests.article&pk={article.pk}"):
        for period, views in [
            ("", 47),
            ("&days=1", 2),
            ("&days=2", 7),
            ("&days=11", 47),
            (f"&since={days_ago(1).isoformat()}", 7),
            (f"&since={days_ago(10).isoformat()}", 47),
        ]:
            status, body = get(staff, f"{TOTAL}?{subject}{period}")
            assert (status, body["views"]) == (200, views), (subject, period)
    status, body = get(staff, f"{TOTAL}?view=article-detail&since={days_ago(1).isoformat()}")
    assert body == {
        "subject": {"view": "article-detail"},
        "days": None,
        "since": days_ago(1).isoformat(),
        "views": 7,
    }
    assert get(staff, f"{TOTAL}?url=/never-seen/") == (
        200,
        {"subject": {"url": "/never-seen/"}, "days": None, "since": None, "views": 0},
    )


@flushed_or_not
def test_most_viewed_lists(pipeline: str, staff: Client, flushed: bool) -> None:
    a, b, c = (Article.objects.create(title=f"T{i}", slug=f"s{i}") for i in range(3))
    store(article_target(c), 9, age=20)  # c leads all time, not in the last week
    visit(f"/articles/{a.pk}/", 3)
    visit(f"/by-slug/{b.slug}/", 4)
    visit("/async/", 1)
    if flushed:
        flush()

    status, body = get(staff, f"{TOP_PAGES}?limit=2")
    assert (status, body["days"], body["limit"]) == (200, None, 2)
    assert body["results"] == [
        {"url": f"/articles/{c.pk}/", "views": 9},
        {"url": f"/by-slug/{b.slug}/", "views": 4},
    ]
    status, body = get(staff, f"{TOP_PAGES}?days=7")
    assert body["results"] == [
        {"url": f"/by-slug/{b.slug}/", "views": 4},
        {"url": f"/articles/{a.pk}/", "views": 3},
        {"url": "/async/", "views": 1},
    ]
    status, body = get(staff, f"{TOP_OBJECTS}?model=tests.Article&days=7")
    assert (status, body["model"]) == (200, "tests.article")
    assert body["results"] == [
        {"pk": str(b.pk), "label": "T1", "views": 4},
        {"pk": str(a.pk), "label": "T0", "views": 3},
    ]
    status, body = get(staff, f"{TOP_OBJECTS}?model=tests.article&limit=1")
    assert body["results"] == [{"pk": str(c.pk), "label": "T2", "views": 9}]
    status, body = get(staff, TOP_VIEWS)
    assert body["results"] == [
        {"view": "article-detail", "views": 12},
        {"view": "article-slug", "views": 4},
        {"view": "async-page", "views": 1},
    ]


def test_the_api_itself_is_not_counted(article: Article) -> None:
    # Browsers' requests through the middleware, with the default settings.
    visit(f"/articles/{article.pk}/", 1)
    headers = bearer(mint(["all"], timedelta(minutes=5)))
    calls = [("GET", url.format(pk=article.pk), headers) for url in EVERY_ENDPOINT]
    assert {r.status_code for r in asgi_requests(calls)} == {200}
    flush()
    assert PageView.get_view_count() == 1


# -- who may read --------------------------------------------------------------------------


@pytest.mark.parametrize("url", EVERY_ENDPOINT)
def test_anonymous_callers_get_401_and_no_data(url: str, article: Article) -> None:
    visit(f"/articles/{article.pk}/", 2)
    response = Client().get(url.format(pk=article.pk))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="pageviews"'
    assert json.loads(response.content) == {
        "error": "Log in, or send 'Authorization: Bearer <token>'."
    }
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("url", EVERY_ENDPOINT)
@pytest.mark.parametrize(
    "kind", ["no permission", "permission without staff", "staff without permission", "inactive"]
)
def test_users_without_the_permission_get_403(url: str, kind: str, article: Article) -> None:
    person = {
        "no permission": lambda: user("u", staff=False, permitted=False),
        "permission without staff": lambda: user("u", staff=False),
        "staff without permission": lambda: user("u", permitted=False),
        "inactive": lambda: user("u", is_active=False),
    }[kind]()
    client = Client()
    client.force_login(person)
    status, body = get(client, url.format(pk=article.pk))
    if kind == "inactive":  # the session of an inactive user is no login at all
        assert status == 401
    else:
        assert (status, body) == (403, {"error": f"Reading page-view statistics needs "
                                                 f"{STATS_PERMISSION!r}."})  # fmt: skip


@pytest.mark.parametrize("url", EVERY_ENDPOINT)
def test_permitted_staff_and_superusers_read(url: str, article: Article, staff: Client) -> None:
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password="x"))
    for client in (staff, admin):
        assert client.get(url.format(pk=article.pk)).status_code == 200


def test_anonymous_callers_learn_nothing_from_bad_parameters() -> None:
    for url in (f"{DAILY}?days=x", f"{TOTAL}?model=no.such&pk=1", f"{TOP_PAGES}?bogus=1"):
        assert Client().get(url).status_code == 401


def test_a_token_of_scope_all_reads_everything(article: Article) -> None:
    visit(f"/articles/{article.pk}/", 2)
    token = mint(["all"], timedelta(hours=1))
    for url in EVERY_ENDPOINT:
        status, _ = get(Client(), url.format(pk=article.pk), **bearer(token))
        assert status == 200, url
    status, body = get(Client(), f"{TOTAL}?url=/articles/{article.pk}/", **bearer(token))
    assert body["views"] == 2


def test_a_scoped_token_reads_its_subject_only(article: Article) -> None:
    other = Article.objects.create(title="Other", slug="other")
    visit(f"/articles/{article.pk}/", 2)
    visit(f"/articles/{other.pk}/", 1)
    client = Client()
    url_token = bearer(mint([f"url:/articles/{article.pk}"], timedelta(minutes=5)))
    assert get(client, f"{TOTAL}?url=/articles/{article.pk}/", **url_token)[1]["views"] == 2
    assert get(client, f"{DAILY}?url=/articles/{article.pk}/&days=1", **url_token)[0] == 200
    for url in (
        f"{TOTAL}?url=/articles/{other.pk}/",
        f"{TOTAL}?model=tests.article&pk={article.pk}",
        f"{TOTAL}?view=article-detail",
        f"{TOP_PAGES}",
        f"{TOP_OBJECTS}?model=tests.article",
    ):
        assert get(client, url, **url_token) == (403, {"error": "The token does not grant this."})

    object_token = bearer(mint([f"object:tests.Article:{article.pk}", "top"], timedelta(days=1)))
    body = get(client, f"{TOTAL}?model=tests.article&pk={article.pk}", **object_token)[1]
    assert body["views"] == 2
    assert get(client, f"{TOTAL}?model=tests.article&pk={other.pk}", **object_token)[0] == 403
    # Outside its scope, a missing object is 403 too: the token cannot probe for objects.
    assert get(client, f"{TOTAL}?model=tests.article&pk=999999", **object_token)[0] == 403
    assert get(client, f"{TOP_PAGES}?limit=1", **object_token)[1]["results"] == [
        {"url": f"/articles/{article.pk}/", "views": 2}
    ]


def test_a_token_wins_over_the_session(article: Article, staff: Client) -> None:
    token = bearer(mint(["top"], timedelta(minutes=1)))
    assert staff.get(f"{TOTAL}?view=x", headers=token).status_code == 403
    assert staff.get(f"{TOTAL}?view=x").status_code == 200


def test_expired_forged_and_malformed_tokens_get_401(article: Article) -> None:
    url = f"{TOTAL}?url=/articles/{article.pk}/"
    token = mint(["all"], timedelta(minutes=10))
    with time_machine.travel(timedelta(minutes=11)):
        status, body = get(Client(), url, **bearer(token))
    assert (status, body) == (401, {"error": "The token has expired."})

    value, _, signature = token.rpartition(":")
    forged = [
        f"{value}:{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",  # signature
        signing.dumps({"s": ["all"], "e": 2**40}),  # signed by this key, but not as a token
        signing.dumps({"s": ["all"], "e": 2**40}, salt="x", key="another-secret"),
        "not-a-token",
        "x" * 5000,
    ]
    for bad in forged:
        response = Client().get(url, headers=bearer(bad))
        assert response.status_code == 401, bad[:40]
        assert response["WWW-Authenticate"] == 'Bearer realm="pageviews", error="invalid_token"'
    for header in (f"Basic {token}", "Bearer", "Bearer  ", token):
        assert Client().get(url, headers={"authorization": header}).status_code == 401


def test_tokens_are_minted_by_a_command(article: Article) -> None:
    from io import StringIO

    out = StringIO()
    call_command(
        "pageviews_token", "--scope", "top", "--scope", "view:x", "--expires", "2h", stdout=out
    )
    token = out.getvalue().strip()
    assert get(Client(), TOP_VIEWS, **bearer(token))[0] == 200
    assert get(Client(), f"{TOTAL}?view=x", **bearer(token))[0] == 200
    assert get(Client(), f"{TOTAL}?view=y", **bearer(token))[0] == 403
    with time_machine.travel(timedelta(hours=2, seconds=1)):
        assert get(Client(), TOP_VIEWS, **bearer(token))[0] == 401
    for args in (
        ["--scope", "everything"],
        ["--scope", "object:tests.nosuch:1"],
        ["--scope", "url:no-slash"],
        ["--scope", "all", "--expires", "2w"],
        ["--scope", "all", "--expires", f"{MAX_LIFETIME.days + 1}d"],
        ["--scope", "all", "--expires", "0m"],
    ):
        with pytest.raises(CommandError):
            call_command("pageviews_token", *args, stdout=StringIO())


# -- strict parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"{DAILY}", "Give exactly one subject: 'url', 'model' with 'pk', or 'view'."),
        (
            f"{DAILY}?url=/a/&view=v",
            "Give exactly one subject: 'url', 'model' with 'pk', or 'view'.",
        ),
        (f"{DAILY}?model=tests.article", "Parameters 'model' and 'pk' go together."),
        (f"{DAILY}?pk=1&url=/a/", "Parameters 'model' and 'pk' go together."),
        (f"{DAILY}?url=a/", "Parameter 'url' must be a path starting with '/'."),
        (f"{DAILY}?url=", "Parameter 'url' must not be empty."),
        (f"{DAILY}?url=/{'x' * 2000}", "Parameter 'url' is longer than 2000 characters."),
        (f"{DAILY}?url=/a/&days=0", "Parameter 'days' must be a whole number from 1 to 366."),
        (f"{DAILY}?url=/a/&days=367", "Parameter 'days' must be a whole number from 1 to 366."),
        (f"{DAILY}?url=/a/&days=-1", "Parameter 'days' must be a whole number from 1 to 366."),
        (f"{DAILY}?url=/a/&days=1e3", "Parameter 'days' must be a whole number from 1 to 366."),
        (f"{DAILY}?url=/a/&days=%D9%A3", "Parameter 'days' must be a whole number from 1 to 366."),
        (f"{DAILY}?url=/a/&days=1&days=2", "Parameter 'days' must be given once."),
        (
            f"{DAILY}?url=/a/&day=7",
            "Unknown parameter(s) 'day'; allowed: url, model, pk, view, days.",
        ),
        (f"{TOTAL}?url=/a/&since=2020-13-01", "Parameter 'since' must be a date, YYYY-MM-DD."),
        (f"{TOTAL}?url=/a/&since=20200101", "Parameter 'since' must be a date, YYYY-MM-DD."),
        (f"{TOTAL}?url=/a/&since=2999-01-01", "Parameter 'since' must not be in the future."),
        (f"{TOTAL}?url=/a/&since=2020-01-01&days=3", "Give 'days' or 'since', not both."),
        (f"{TOP_PAGES}?limit=101", "Parameter 'limit' must be a whole number from 1 to 100."),
        (f"{TOP_PAGES}?limit=", "Parameter 'limit' must be a whole number from 1 to 100."),
        (f"{TOP_PAGES}?url=/a/", "Unknown parameter(s) 'url'; allowed: limit, days."),
        (f"{TOP_OBJECTS}", "Parameter 'model' is required."),
    ],
)
def test_bad_parameters_are_400_with_a_json_error(staff: Client, url: str, message: str) -> None:
    response = staff.get(url)
    assert (response.status_code, response["Content-Type"]) == (400, "application/json")
    assert json.loads(response.content) == {"error": message}


def test_unknown_models_and_objects_are_404(staff: Client, article: Article) -> None:
    for url in (
        f"{TOTAL}?model=tests.nosuch&pk=1",
        f"{TOTAL}?model=nosuch&pk=1",
        f"{TOTAL}?model=tests.article&pk={article.pk + 1000}",
        f"{TOTAL}?model=tests.article&pk=not-a-number",
        f"{DAILY}?model=tests.document&pk=not-a-uuid",
        f"{TOP_OBJECTS}?model=tests.nosuch",
    ):
        assert staff.get(url).status_code == 404, url
    doc = Document.objects.create(code="d")
    assert staff.get(f"{TOTAL}?model=tests.document&pk={doc.pk}").status_code == 200


def test_only_get_and_head(staff: Client) -> None:
    assert staff.post(f"{TOTAL}?view=x").status_code == 405
    assert staff.head(f"{TOTAL}?view=x").status_code == 200


# -- caching -------------------------------------------------------------------------------


def test_answers_are_privately_cacheable_with_an_etag(staff: Client, article: Article) -> None:
    url = f"{TOTAL}?url=/articles/{article.pk}/"
    visit(f"/articles/{article.pk}/", 1)
    first = staff.get(url)
    assert first["Cache-Control"] == "private, max-age=60"
    assert {"Authorization", "Cookie"} <= {v.strip() for v in first["Vary"].split(",")}
    etag = first["ETag"]
    again = staff.get(url, headers={"if-none-match": etag})
    assert (again.status_code, again.content, again["ETag"]) == (304, b"", etag)
    visit(f"/articles/{article.pk}/", 1, first_visitor=1)  # the count changes: a new answer
    changed = staff.get(url, headers={"if-none-match": etag})
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert json.loads(changed.content)["views"] == 2
    with override_settings(PAGEVIEW_API_MAX_AGE=5):
        assert staff.get(url)["Cache-Control"] == "private, max-age=5"
