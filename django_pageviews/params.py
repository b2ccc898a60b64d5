"""Strict reading of the query parameters of the stats API and the public counter.

Every parameter is known, given once, of its type and within its bounds, or the request
is answered 400 with a JSON error that says which and why: a misspelt ``day=7`` silently
ignored would answer a question nobody asked, and an unbounded ``limit`` or ``days`` would
let one request cost what a thousand do. A subject names a model that is not installed or
an object that does not exist: 404.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from django.apps import apps
from django.core.exceptions import TooManyFieldsSent
from django.db.models import Model
from django.http import HttpRequest

from .events import OBJECT_ID_MAX_LENGTH, VIEW_NAME_MAX_LENGTH, current_day
from .objects import lookup_value, model_label
from .subjects import OBJECT, URL, VIEW, Subject

MAX_DAYS = 366  # a daily series or a period: a year at most
MAX_LIMIT = 100  # entries of a most-viewed list
URL_PARAM_MAX_LENGTH = 2000  # longer paths are cut to URL_MAX_LENGTH when stored anyway
MODEL_PARAM_MAX_LENGTH = 200
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
SUBJECT_PARAMS = ("url", "model", "pk", "view")


class RequestError(Exception):
    """A request the API refuses: the HTTP status and the message of its JSON error."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> RequestError:
    return RequestError(400, message)


def not_found(message: str = "Not found.") -> RequestError:
    return RequestError(404, message)


class Params:
    """The query parameters of one request, checked against the names it may use."""

    def __init__(self, request: HttpRequest, allowed: Collection[str]) -> None:
        try:
            query = request.GET
        except TooManyFieldsSent:  # Django's own 400 would be an HTML page, and cacheable
            raise bad_request("Too many parameters.") from None
        unknown = sorted(set(query) - set(allowed))
        if unknown:
            names = ", ".join(repr(name[:50]) for name in unknown[:5])
            raise bad_request(f"Unknown parameter(s) {names}; allowed: {', '.join(allowed)}.")
        for name in query:
            if len(query.getlist(name)) != 1:
                raise bad_request(f"Parameter {name!r} must be given once.")
        self.query = query

    def text(self, name: str, max_length: int) -> str | None:
        value = self.query.get(name)
        if value is None:
            return None
        if not value:
            raise bad_request(f"Parameter {name!r} must not be empty.")
        if len(value) > max_length:
            raise bad_request(f"Parameter {name!r} is longer than {max_length} characters.")
        return value

    def integer(self, name: str, default: int | None, maximum: int) -> int | None:
        """A whole number from 1 to ``maximum``, or ``default`` when absent."""
        value = self.query.get(name)
        if value is None:
            return default
        if not (value.isascii() and value.isdigit() and len(value) <= 6):
            raise bad_request(f"Parameter {name!r} must be a whole number from 1 to {maximum}.")
        number = int(value)
        if not 1 <= number <= maximum:
            raise bad_request(f"Parameter {name!r} must be a whole number from 1 to {maximum}.")
        return number

    def day(self, name: str) -> date | None:
        """A past or present day, ``YYYY-MM-DD``."""
        value = self.query.get(name)
        if value is None:
            return None
        try:
            if not ISO_DAY.fullmatch(value):
                raise ValueError(value)
            day = date.fromisoformat(value)
        except ValueError:
            raise bad_request(f"Parameter {name!r} must be a date, YYYY-MM-DD.") from None
        if day > current_day():
            raise bad_request(f"Parameter {name!r} must not be in the future.")
        return day


@dataclass(frozen=True)
class SubjectName:
    """A subject as the request names it, before any database lookup."""

    kind: str
    url: str = ""
    model: type[Model] | None = None
    pk: str = ""
    view_name: str = ""

    @property
    def scope(self) -> str:
        """The token scope that grants reading it (api/tokens.py)."""
        if self.model is not None:
            return f"{OBJECT}:{model_label(self.model)}:{self.pk}"
        if self.kind == URL:
            return f"{URL}:{self.url}"
        return f"{VIEW}:{self.view_name}"


def subject_name(params: Params, with_view: bool = True) -> SubjectName:
    """``url``, ``model`` and ``pk``, or ``view`` (when allowed): exactly one subject."""
    url = params.text("url", URL_PARAM_MAX_LENGTH)
    label = params.text("model", MODEL_PARAM_MAX_LENGTH)
    pk = params.text("pk", OBJECT_ID_MAX_LENGTH)
    view = params.text("view", VIEW_NAME_MAX_LENGTH) if with_view else None
    given = [n for n, v in (("url", url), ("model", label), ("view", view)) if v is not None]
    choices = "'url', 'model' with 'pk'" + (", or 'view'" if with_view else "")
    if len(given) != 1:
        raise bad_request(f"Give exactly one subject: {choices}.")
    if (label is None) != (pk is None):
        raise bad_request("Parameters 'model' and 'pk' go together.")
    if url is not None:
        if not url.startswith("/"):
            raise bad_request("Parameter 'url' must be a path starting with '/'.")
        return SubjectName(URL, url=Subject.for_url(url).url)
    if label is not None and pk is not None:
        return SubjectName(OBJECT, model=installed_model(label), pk=pk)
    assert view is not None
    return SubjectName(VIEW, view_name=view)


def installed_model(label: str) -> type[Model]:
    """The installed model ``app_label.model_name`` (404 for any other)."""
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        raise not_found(f"No model {label[:100]!r}.") from None


def resolve(name: SubjectName) -> Subject:
    """The subject, with its object read from the database (404 if there is none)."""
    if name.model is None:
        return Subject(name.kind, url=name.url, view_name=name.view_name)
    model = name.model
    assert model._meta.pk is not None
    try:
        value = lookup_value(model._meta.pk, name.pk)
    except ValueError:
        raise not_found() from None
    obj = model._default_manager.filter(pk=value).first()
    if obj is None:
        raise not_found()
    return Subject.for_object(obj)
