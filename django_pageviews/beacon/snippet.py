"""The HTML of ``{% pageview_beacon %}``: one inline script a CSP can allow by its hash.

The HTML of ``{% pageview_beacon %}``: one small inline script, the same text on every
page (the beacon's address travels in an attribute), so that a Content-Security-Policy
can allow it by its hash, ``SCRIPT_HASH``, without ``'unsafe-inline'`` or a nonce; and a
1x1 image inside ``<noscript>`` for browsers without JavaScript.

The script waits until a prerendered page is shown (a prerender is no visit), sends
nothing on an error page, and tells the beacon the page's path and query string, which
must give the token's URL (a copy of the page served under another address counts
nothing). ``sendBeacon`` is fire-and-forget and outlives the page; where it is missing or
refuses, an image request does the same.
"""

from __future__ import annotations

import base64
import hashlib

from django.utils.html import format_html
from django.utils.safestring import SafeString

ATTRIBUTE = "data-pageview-beacon"
QUERY_CLAIM_LENGTH = 2000  # characters of location.search sent; the view caps the rest
SCRIPT = (
    "(function(s){"
    f'var u=s.getAttribute("{ATTRIBUTE}"),d=document;'
    "function f(){"
    "var p=window.performance,"
    'n=p&&p.getEntriesByType&&p.getEntriesByType("navigation")[0];'
    "if(n&&n.responseStatus>=400)return;"
    'var b=u+"&p="+encodeURIComponent(location.pathname)'
    f'+"&q="+encodeURIComponent(location.search.slice(1,{QUERY_CLAIM_LENGTH + 1}));'
    "if(!(navigator.sendBeacon&&navigator.sendBeacon(b)))new Image().src=b}"
    'if(d.prerendering)d.addEventListener("prerenderingchange",f,{once:true});else f()'
    "})(document.currentScript)"
)
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()


def beacon_html(url: str, nonce: str | None = None) -> SafeString:
    """The script and its ``<noscript>`` image for the beacon at ``url`` (token included).
    The image sends its Referer to this site in full (``same-origin``) whatever the page's
    Referrer-Policy, since it cannot say its path otherwise."""
    nonce_attribute = format_html(' nonce="{}"', nonce) if nonce else ""
    return format_html(
        '<script {}="{}"{}>{}</script><noscript><img src="{}" width="1" height="1" alt="" '
        'referrerpolicy="same-origin"></noscript>',
        ATTRIBUTE,
        url,
        nonce_attribute,
        SafeString(SCRIPT),
        url,
    )
