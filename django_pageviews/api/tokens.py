"""Signed, scoped, expiring tokens that let a script read the stats API without an account.

Signed, scoped, expiring tokens for the stats API: read access for a script, a
dashboard of another site or a monitoring check, without a user account.

A token is ``django.core.signing.dumps`` of its scopes and expiry time, signed with
``SECRET_KEY`` (and the salt below): nothing is stored, so a token cannot be revoked
one by one. Keep lifetimes short; rotating ``SECRET_KEY`` (without the old key in
``SECRET_KEY_FALLBACKS``) revokes every token at once.

Scopes:

- ``all``: every endpoint, any subject;
- ``top``: the most-viewed lists;
- ``metrics``: the Prometheus metrics (django_pageviews.metrics);
- ``url:<path>``, ``object:<app_label.model>:<pk>``, ``view:<view name>``: the daily
  series and totals of that one subject.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.core import signing

from django_pageviews.objects import model_label
from django_pageviews.params import RequestError, installed_model
from django_pageviews.subjects import OBJECT, URL, VIEW, Subject

SALT = "django_pageviews.api.token"
ALL = "all"
TOP = "top"
METRICS = "metrics"
MAX_LIFETIME = timedelta(days=366)  # every token expires; none for ever
MAX_TOKEN_LENGTH = 4096  # longer headers are refused before any signature check


class InvalidToken(Exception):
    """A token that grants nothing: forged, altered, expired or malformed."""


@dataclass(frozen=True)
class Grant:
    """What the caller may read, until when (seconds since the epoch)."""

    scopes: frozenset[str]
    expires: float

    def allows(self, scope: str) -> bool:
        return ALL in self.scopes or scope in self.scopes


def normalize_scope(scope: str) -> str:
    """``scope`` in the form requests are compared with (a URL as stored, a model by its
    label); ValueError for a scope that is none of the documented forms."""
    if scope in (ALL, TOP, METRICS):
        return scope
    kind, _, rest = scope.partition(":")
    if kind == URL and rest.startswith("/"):
        return f"{URL}:{Subject.for_url(rest).url}"
    if kind == VIEW and rest:
        return scope
    if kind == OBJECT:
        label, _, pk = rest.partition(":")
        if label and pk:
            try:
                model = installed_model(label)
            except RequestError:
                raise ValueError(f"No installed model {label!r} in scope {scope!r}.") from None
            return f"{OBJECT}:{model_label(model)}:{pk}"
    raise ValueError(
        f"Unknown scope {scope!r}: use 'all', 'top', 'metrics', 'url:/path/', "
        "'object:app_label.model:pk' or 'view:view-name'."
    )


def mint(scopes: Iterable[str], lifetime: timedelta) -> str:
    """A token granting ``scopes`` for ``lifetime`` (at most MAX_LIFETIME)."""
    normalized = sorted({normalize_scope(s) for s in scopes})
    if not normalized:
        raise ValueError("A token needs at least one scope.")
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise ValueError(f"A token's lifetime must be more than 0 and at most {MAX_LIFETIME}.")
    expires = int(time.time() + lifetime.total_seconds())
    return signing.dumps({"s": normalized, "e": expires}, salt=SALT, compress=True)


def verify(token: str) -> Grant:
    """The grant of a token this site signed and that has not expired; else InvalidToken."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("The token is malformed.")
    try:
        payload = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError):  # ValueError: not even base64 and JSON
        raise InvalidToken("The token is not valid.") from None
    scopes, expires = (payload.get("s"), payload.get("e")) if isinstance(payload, dict) else ((), 0)
    if not isinstance(expires, int) or not isinstance(scopes, list):
        raise InvalidToken("The token is malformed.")
    if expires <= time.time():
        raise InvalidToken("The token has expired.")
    return Grant(frozenset(s for s in scopes if isinstance(s, str)), expires)
