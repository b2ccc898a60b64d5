"""JSON answers of the stats API and the public counter: cacheable, with an ETag.

The ETag is a hash of the body, so a client or CDN that asks again with ``If-None-Match``
gets 304 without the body while the count is unchanged (Django's own
``get_conditional_response``, which the ``django.views.decorators.http`` decorators use:
they would need the ETag before the view runs, and here it is the count itself).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.cache import (
    get_conditional_response,
    patch_cache_control,
    patch_vary_headers,
    set_response_etag,
)

from .params import RequestError


def cached(
    request: HttpRequest, response: HttpResponse, max_age: int, public: bool
) -> HttpResponseBase:
    """``response`` with its Cache-Control and ETag, or 304 if the client has it already.

    Private answers (read with a session or a token) also vary on what authenticated
    them, so that no shared cache ever gives one caller's answer to another.
    """
    if public:
        patch_cache_control(response, public=True, max_age=max_age)
    else:
        patch_cache_control(response, private=True, max_age=max_age)
        patch_vary_headers(response, ("Authorization", "Cookie"))
    set_response_etag(response)
    conditional = get_conditional_response(request, etag=response["ETag"], response=response)
    return response if conditional is None else conditional


def json_answer(
    request: HttpRequest, data: dict[str, Any], max_age: int, public: bool
) -> HttpResponseBase:
    return cached(request, JsonResponse(data), max_age, public)


def error_answer(error: RequestError) -> JsonResponse:
    """A refusal, never stored by any cache: the same URL may be allowed a moment later
    (after a log-in, with a token, once the setting opts it in)."""
    response = JsonResponse({"error": error.message}, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    patch_cache_control(response, no_store=True)
    return response
