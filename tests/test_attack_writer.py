"""The in-process writer under odd but legal conditions (found attacking the merge of
issue #10).

The flush age is measured on the views' wall-clock timestamps: a clock stepped back after
a view was queued (an NTP correction, a VM resumed from a snapshot) made the writer sleep
for the size of the step, up to its hour-long idle wait, so that a SIGKILL could lose an
hour of views instead of PAGEVIEW_MAX_BUFFER_AGE. A view stamped in the future is now due.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.test import override_settings

from django_pageviews.buffer import buffer
from django_pageviews.events import PageViewEvent, Target
from django_pageviews.models import PageView
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

STEP = 3000.0  # seconds the clock went back after the view was queued


@override_settings(PAGEVIEW_MAX_BUFFER_AGE=0.2)
def test_a_clock_stepped_back_does_not_hold_views_past_the_age() -> None:
    target = Target("/plain/", "plain", "", "", "")
    queued = PageViewEvent(uuid.uuid4().hex, time.time() + STEP, target, None, "ua", "")
    assert buffer.add(queued)
    wait_for(lambda: buffer.pending_count() == 0, "the writer to write the view", seconds=30)
    assert buffer.last_error is None
    assert PageView.objects.count() == 1
