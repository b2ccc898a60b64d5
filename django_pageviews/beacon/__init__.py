"""The beacon: counting pages that a page cache or a CDN serves without Django.

``{% pageview_beacon %}`` puts a signed token of the page's target in the page
(``tokens``); the browser sends it back to the beacon view (``views``), which counts the
view by the middleware's own rules; ``marks`` keeps the middleware from counting the same
page a second time. See docs/beacon.md.
"""
