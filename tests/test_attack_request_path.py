"""Counting by hand with odd arguments (found attacking the merge of issue #10).

``record_view`` promised never to raise, yet built its event before its ``try``: a URL
that is None (``request.META.get("HTTP_REFERER")``), bytes for the user agent, a number
for the address raised into the caller's view. And the view name was not capped as a
tracked one is: a name over 200 characters made PostgreSQL and MariaDB refuse the whole
batch, stalling every view behind it for five attempts before the view was dropped.
"""

from __future__ import annotations

from typing import Any

import pytest

from django_pageviews import stats
from django_pageviews.buffer import buffer
from django_pageviews.events import VIEW_NAME_MAX_LENGTH
from django_pageviews.manual import record_view
from django_pageviews.models import PageView
from django_pageviews.recorder import flush

pytestmark = pytest.mark.django_db(transaction=True)

ODD: list[dict[str, Any]] = [
    {"url": None},
    {"url": b"/bytes/"},
    {"url": "/ua/", "user_agent": b"Mozilla/5.0"},
    {"url": "/ip/", "ip_address": 203},
    {"url": "/name/", "view_name": 123},
]


def test_odd_arguments_never_raise_and_are_counted_as_errors() -> None:
    before = stats.snapshot().get(stats.SKIP_ERROR, 0)
    for arguments in ODD:
        assert record_view(**arguments) is None
    assert record_view("/good/", user_agent="ua") is not None
    assert stats.snapshot().get(stats.SKIP_ERROR, 0) - before == len(ODD)
    flush()
    assert buffer.last_error is None
    assert list(PageView.objects.values_list("url", flat=True)) == ["/good/"]


def test_a_long_view_name_is_capped_not_a_poison_for_its_batch() -> None:
    record_view("/long-name/", view_name="v" * 300, user_agent="ua")
    record_view("/good/", view_name="good", user_agent="ua")
    flush()
    assert buffer.last_error is None, buffer.last_error
    names = dict(PageView.objects.values_list("url", "view_name"))
    assert names == {"/long-name/": "v" * VIEW_NAME_MAX_LENGTH, "/good/": "good"}
