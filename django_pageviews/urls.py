"""URLs of the stats API, the public counters and the beacon, for a project's urls.py.

The stats API, the public counters and the beacon:
``path("pageviews/", include("django_pageviews.urls"))``.

Names are in the ``pageviews`` namespace (``reverse("pageviews:api-daily")``). The API
answers nobody without a permission or a token; the counters answer only for what
``PAGEVIEW_PUBLIC_COUNTERS`` opts in (nothing by default); the beacon counts only pages
whose token ``{% pageview_beacon %}`` signed.
"""

from __future__ import annotations

from django.urls import path

from django_pageviews.api import views as api
from django_pageviews.beacon import views as beacon
from django_pageviews.counter import views as counter

app_name = "pageviews"

urlpatterns = [
    path("api/daily/", api.daily, name="api-daily"),
    path("api/total/", api.total, name="api-total"),
    path("api/top/pages/", api.top_pages, name="api-top-pages"),
    path("api/top/objects/", api.top_objects, name="api-top-objects"),
    path("api/top/views/", api.top_views, name="api-top-views"),
    path("counter.json", counter.counter_json, name="counter-json"),
    path("counter.svg", counter.counter_svg, name="counter-svg"),
    path("beacon/", beacon.beacon, name="beacon"),
]
