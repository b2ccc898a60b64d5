"""Who may read the stats API: staff with the daily totals' view permission, or a token.

Who may read the stats API: a staff user with the view permission of the daily totals,
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
BEARER_HINT = "Send the token as 'Authorization: Bearer <token>'."
LOGIN_HINT = "Log in, or send 'Authorization: Bearer <token>'."


def unauthorized(message: str, token_error: bool = False) -> RequestError:
    challenge = REALM + (', error="invalid_token"' if token_error else "")
    return RequestError(401, message, {"WWW-Authenticate": challenge})


def grant_for(request: HttpRequest) -> Grant:
    """What the request may read: a token's scopes when it sends one (its session is then
    ignored), everything for a permitted user. RequestError (401, 403) otherwise.

    Only a Bearer header is a token. Other schemes are no concern of ours: a proxy's HTTP
    Basic auth in front of a staging site sends one with every request of the browser,
    whose session then decides, as in the admin."""
    header = request.META.get("HTTP_AUTHORIZATION")
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() == "bearer":
        if not token.strip():
            raise unauthorized(BEARER_HINT, True)
        try:
            return verify(token.strip())
        except InvalidToken as exc:
            raise unauthorized(str(exc), True) from None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        # Credentials of another kind, or a bare token: say how a token is sent.
        raise unauthorized(BEARER_HINT if header else LOGIN_HINT)
    if not (user.is_active and user.is_staff and user.has_perm(STATS_PERMISSION)):
        raise RequestError(403, f"Reading page-view statistics needs {STATS_PERMISSION!r}.")
    return Grant(frozenset({ALL}), math.inf)


def require(grant: Grant, scope: str) -> None:
    if not grant.allows(scope):
        raise RequestError(403, "The token does not grant this.")
