"""The beacon's token: the page's target and the time it was issued, signed.

``django.core.signing.dumps`` (a ``TimestampSigner`` under ``SECRET_KEY`` and the salt
below), so a token cannot be forged, altered or moved to another page: the beacon counts
the target inside its token and nothing the request says. The issue time bounds how long
a copy of the page, cached or leaked, can count: ``PAGEVIEW_BEACON_MAX_AGE``. Nothing is
stored.
"""

from __future__ import annotations

from django.core import signing

from django_pageviews.conf import conf
from django_pageviews.events import Target

SALT = "django_pageviews.beacon"
# A target's fields are capped (a URL at 700 characters and 2600 UTF-8 bytes, a view name
# at 200, a slug at 255): a longer token is not ours. Non-ASCII text is JSON-escaped
# (\uXXXX) before compression: a CJK URL, view name and slug made 2.8-4.3 kB; incompressible,
# at most ~10.3 kB. A typical page's is ~160 characters.
MAX_TOKEN_LENGTH = 12_288


class BadToken(Exception):
    """A token that counts nothing: forged, altered, expired or malformed."""


def mint(target: Target) -> str:
    return signing.dumps(list(target), salt=SALT, compress=True)


def verify(token: str) -> Target:
    """The target of a token this site signed within ``PAGEVIEW_BEACON_MAX_AGE``."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise BadToken("The token is malformed.")
    try:
        fields = signing.loads(token, salt=SALT, max_age=conf.BEACON_MAX_AGE)
    except signing.SignatureExpired:
        raise BadToken("The token has expired.") from None
    except (signing.BadSignature, ValueError):  # ValueError: not even base64 and JSON
        raise BadToken("The token is not valid.") from None
    if (
        not isinstance(fields, list)
        or len(fields) != len(Target._fields)
        or not all(isinstance(f, str) for f in fields)
    ):
        raise BadToken("The token is malformed.")
    return Target(*fields)
