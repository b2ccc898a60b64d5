"""The ``pageview_tags`` template library of the original 0.2.x package.

``{% load pageview_tags %}``. Counts are live, read through the same functions as
``PageView``'s class methods: stored totals plus views still waiting in a buffer.

Failure rules, chosen per kind:

- Filters never raise (Django's rule for filters): a value they cannot handle comes back
  unchanged, ``get_view_count`` of a non-object is 0, ``get_item`` of a missing key is ''.
- Tags raise ``TemplateSyntaxError`` on a misconfiguration: a model name that is unknown,
  or ambiguous without its app label; a ``limit`` or ``days`` that is no whole number; a tag
  asked about "the current page" with no request in its context. The original printed and
  returned ``[]`` (or failed with a KeyError): a typo then showed an empty sidebar forever,
  and which of two same-named models it counted depended on the order of INSTALLED_APPS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from django import template
from django.apps import apps
from django.db.models import Model
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_pageviews import queries, reports
from django_pageviews.beacon.marks import mark_page
from django_pageviews.beacon.snippet import beacon_html
from django_pageviews.beacon.tokens import mint
from django_pageviews.counter.embed import NoCounter, NotPublic, counter_url
from django_pageviews.events import OBJECT_ID_MAX_LENGTH, PK, stored_text
from django_pageviews.numbers import (  # importable from here, as in 0.2.x
    format_number as format_number,
)
from django_pageviews.numbers import (
    format_number_with_options as format_number_with_options,
)
from django_pageviews.objects import model_label
from django_pageviews.tracking import is_excluded_page, page_target

register = template.Library()

REQUEST_CONTEXT_PROCESSOR = "django.template.context_processors.request"

register.filter("format_number", format_number, is_safe=True)
register.filter("format_number_with_options", format_number_with_options, is_safe=True)


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``{{ counts|get_item:article.pk }}``: ``mapping[key]``, or '' when the key is missing
    or ``mapping`` is not a mapping.

    '' is what Django renders for any missing variable; the original's 0 claimed "no views"
    for an object that was never asked about. ``|default:0`` restores it where wanted.
    """
    if not isinstance(mapping, Mapping):
        return ""
    try:
        return mapping.get(key, "")
    except TypeError:  # an unhashable key
        return ""


# -- counts --------------------------------------------------------------------------------


def _is_saved_object(value: Any) -> bool:
    return isinstance(value, Model) and value.pk is not None


def get_view_count(obj: Any) -> int:
    """Views of ``obj``: ``{{ article|get_view_count }}`` or ``{% get_view_count article %}``.

    Anything but a saved model instance (a misspelt variable renders as '') counts 0: the
    read API would otherwise count every view of the site.
    """
    if not _is_saved_object(obj):
        return 0
    return queries.get_view_count(obj=obj)


# One function, both forms: the original documented the filter but registered only the tag.
register.filter("get_view_count", get_view_count)
register.simple_tag(get_view_count, name="get_view_count")


def _request(context: template.Context, tag: str) -> HttpRequest:
    request = context.get("request")
    if not isinstance(request, HttpRequest):
        raise template.TemplateSyntaxError(
            f"{{% {tag} %}} without an argument reads the current request, and there is "
            f"none in the template context: add {REQUEST_CONTEXT_PROCESSOR!r} to the "
            "template context processors, or pass the argument."
        )
    return request


@register.simple_tag(takes_context=True)
def get_url_view_count(context: template.Context, url: str | None = None) -> int:
    """Views of ``url``, by default of the current ``request.path``."""
    if url is None:
        url = _request(context, "get_url_view_count").path
    return queries.get_view_count(url=url)


@register.simple_tag(takes_context=True)
def get_view_name_count(context: template.Context, view_name: str | None = None) -> int:
    """Views of a named view, by default the current ``request.resolver_match.view_name``;
    0 when the page resolved to no view (never the count of every unnamed view)."""
    if view_name is None:
        match = _request(context, "get_view_name_count").resolver_match
        view_name = match.view_name if match is not None else ""
    if not view_name:
        return 0
    return queries.get_view_count(view_name=view_name)


@register.simple_tag
def get_view_counts_for_objects(objects: Any) -> dict[Any, int]:
    """``{pk: views}`` for a list or queryset, in one query whatever its length: use it with
    ``get_item`` on list pages instead of ``get_view_count`` per object."""
    if isinstance(objects, str) or not isinstance(objects, Iterable):
        return {}
    return queries.get_view_counts_for_objects([o for o in objects if _is_saved_object(o)])


# -- reports -------------------------------------------------------------------------------


def _int(value: Any, name: str, tag: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise template.TemplateSyntaxError(
            f"{{% {tag} %}}: {name} must be a whole number, not {value!r}."
        ) from None


def _days(value: Any, tag: str) -> int | None:
    return None if value is None or value == "" else _int(value, "days", tag)


def _fields(value: Any) -> list[str] | None:
    """'author, tags' or a list: the form the original accepted for related fields."""
    if not value:
        return None
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


def _model(model_name: str, app_label: str | None) -> type[Model]:
    """The model named ``model_name`` (any case), in ``app_label`` if given; a dotted
    'app_label.Model' works too. Unknown or ambiguous names raise."""
    if not app_label and "." in model_name:
        app_label, model_name = model_name.split(".", 1)
    if app_label:
        try:
            return apps.get_model(app_label, model_name)
        except LookupError:
            raise template.TemplateSyntaxError(
                f"{{% get_popular_objects %}}: no model {model_name!r} in app {app_label!r}."
            ) from None
    wanted = model_name.lower()
    found = [m for m in apps.get_models() if m._meta.model_name == wanted]
    if len(found) == 1:
        return found[0]
    if not found:
        raise template.TemplateSyntaxError(
            f"{{% get_popular_objects %}}: no installed model is named {model_name!r}."
        )
    labels = ", ".join(sorted(m._meta.label for m in found))
    raise template.TemplateSyntaxError(
        f"{{% get_popular_objects %}}: {model_name!r} is ambiguous ({labels}): pass the app "
        f"label, as in {{% get_popular_objects '{model_name}' 'app_label' %}}."
    )


@register.simple_tag
def get_popular_objects(
    model_name: str,
    app_label: str | None = None,
    limit: Any = 5,
    days: Any = None,
    select_related: Any = None,
    prefetch_related: Any = None,
) -> list[tuple[Model, int]]:
    """``[(object, views)]``, most viewed first:
    ``{% get_popular_objects 'Article' 'blog' limit=5 days=7 as popular %}``."""
    tag = "get_popular_objects"
    return reports.get_popular_objects(
        _model(str(model_name), app_label),
        limit=_int(limit, "limit", tag),
        days=_days(days, tag),
        select_related=_fields(select_related),
        prefetch_related=_fields(prefetch_related),
    )


@register.simple_tag
def get_popular_urls(limit: Any = 5, days: Any = None) -> list[tuple[str, int]]:
    """``[(url, views)]``, most viewed first."""
    tag = "get_popular_urls"
    return reports.get_popular_urls(limit=_int(limit, "limit", tag), days=_days(days, tag))


@register.simple_tag
def get_popular_view_names(limit: Any = 5, days: Any = None) -> list[tuple[str, int]]:
    """``[(view name, views)]``, most viewed first."""
    tag = "get_popular_view_names"
    return reports.get_popular_view_names(limit=_int(limit, "limit", tag), days=_days(days, tag))


@register.simple_tag
def get_daily_views(obj: Any, days: Any = 30) -> dict[date, int]:
    """``{day: views}`` over the last ``days`` days, oldest first, zeros included; empty
    for anything but a saved object."""
    if not _is_saved_object(obj):
        return {}
    return reports.get_daily_views(obj, days=_int(days, "days", "get_daily_views"))


# -- public counters -----------------------------------------------------------------------

COUNTER_ALT = "Page views"


def _counter_url(
    context: template.Context, target: Any, since: Any, kind: str, tag: str
) -> str | None:
    """The counter's URL; None for the current page when it has no public counter (a
    base template may ask on every page), TemplateSyntaxError for a named target that has
    none or for a ``since`` that is not a date (a misconfiguration)."""
    if since is not None and not isinstance(since, date):
        try:
            since = date.fromisoformat(str(since))
        except ValueError:
            raise template.TemplateSyntaxError(
                f"{{% {tag} %}}: since must be a date or 'YYYY-MM-DD', not {since!r}."
            ) from None
    current = target is None or target == ""
    if current:
        target = _request(context, tag).path
    elif not isinstance(target, Model | str):
        raise template.TemplateSyntaxError(
            f"{{% {tag} %}} takes a saved object or a URL path, not {target!r}."
        )
    try:
        return counter_url(target, since, kind)
    except NotPublic as exc:
        if current:
            return None
        raise template.TemplateSyntaxError(f"{{% {tag} %}}: {exc}.") from None
    except NoCounter as exc:
        raise template.TemplateSyntaxError(f"{{% {tag} %}}: {exc}.") from None


@register.simple_tag(takes_context=True)
def pageview_counter(context: template.Context, target: Any = None, since: Any = None) -> str:
    """``{% pageview_counter article %}``, ``{% pageview_counter '/about/' %}`` or, for the
    current page, ``{% pageview_counter %}``: an ``<img>`` of the public counter's SVG
    badge (``since='2026-01-01'`` counts from that day). Renders nothing for a current
    page that ``PAGEVIEW_PUBLIC_COUNTERS`` does not opt in."""
    url = _counter_url(context, target, since, "svg", "pageview_counter")
    if url is None:
        return SafeString("")
    return format_html('<img src="{}" alt="{}" height="20" loading="lazy">', url, COUNTER_ALT)


@register.simple_tag(takes_context=True)
def pageview_counter_url(
    context: template.Context, target: Any = None, since: Any = None, format: str = "svg"
) -> str:
    """The public counter's URL (``format='json'`` for its JSON), '' where the current
    page has none: ``{% pageview_counter_url article format='json' as url %}``."""
    return _counter_url(context, target, since, format, "pageview_counter_url") or ""


# -- beacon --------------------------------------------------------------------------------

BEACON_URL_NAME = "pageviews:beacon"


@register.simple_tag(takes_context=True)
def pageview_beacon(context: template.Context, obj: Any = None, nonce: Any = None) -> str:
    """``{% pageview_beacon %}`` (or ``{% pageview_beacon article %}`` to name the object
    the page shows): a script that counts this page from the browser, for pages that a
    page cache or a CDN serves without Django. Its token names what the middleware would
    record for this request; the middleware then leaves the page to the beacon, so that it
    counts once. Renders nothing on pages that are never counted (the admin, excluded
    paths). ``nonce=request.csp_nonce`` for a Content-Security-Policy with nonces; see
    docs/beacon.md for its hash."""
    request = _request(context, "pageview_beacon")
    if obj is not None and not _is_saved_object(obj):
        raise template.TemplateSyntaxError(
            f"{{% pageview_beacon %}} takes a saved object, not {obj!r}."
        )
    if is_excluded_page(request):
        return SafeString("")
    target = page_target(request, context.get("object"))
    if obj is not None:
        value = stored_text(str(obj.pk), OBJECT_ID_MAX_LENGTH)
        target = target._replace(model=model_label(type(obj)), field=PK, value=value)
    try:
        path = reverse(BEACON_URL_NAME)
    except NoReverseMatch:
        raise template.TemplateSyntaxError(
            "{% pageview_beacon %}: the beacon's URL is not installed: add "
            "path('pageviews/', include('django_pageviews.urls')) to the URLconf."
        ) from None
    mark_page(request)
    return beacon_html(f"{path}?t={mint(target)}", str(nonce) if nonce else None)
