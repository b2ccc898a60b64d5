"""Who may read the stats API: a staff user with the view permission of the daily totals,
or the bearer of a signed token (tokens.py).

The permission is the one the admin already asks before it shows ``PageViewDaily``
("Can view Daily page views"): whoever can read the totals there can read them here, and
granting it to a staff account or group is the usual Django gesture. Superusers have it.
No data without it: anonymous callers get 401 (with the ``WWW-Authenticate`` challenge of
a bearer token), logged-in users without the permission 403, a token outside its scope 403.
"""

from __future__ import annotations

import math

from django.http import HttpRequest

from django_pageviews.api.tokens import ALL, Grant, InvalidToken, verify
from django_pageviews.params import RequestError

STATS_PERMISSION = "django_pageviews.view_pageviewdaily"
REALM = 'Bearer realm="pageviews"'


def unauthorized(message: str, token_error: bool = False) -> RequestError:
    challenge = REALM + (', error="invalid_token"' if token_error else "")
    return RequestError(401, message, {"WWW-Authenticate": challenge})


def grant_for(request: HttpRequest) -> Grant:
    """What the request may read: a token's scopes when it sends one (its session is then
    ignored), everything for a permitted user. RequestError (401, 403) otherwise."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("Send the token as 'Authorization: Bearer <token>'.", True)
        try:
            return verify(token.strip())
        except InvalidToken as exc:
            raise unauthorized(str(exc), True) from None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise unauthorized("Log in, or send 'Authorization: Bearer <token>'.")
    if not (user.is_active and user.is_staff and user.has_perm(STATS_PERMISSION)):
        raise RequestError(403, f"Reading page-view statistics needs {STATS_PERMISSION!r}.")
    return Grant(frozenset({ALL}), math.inf)


def require(grant: Grant, scope: str) -> None:
    if not grant.allows(scope):
        raise RequestError(403, "The token does not grant this.")
