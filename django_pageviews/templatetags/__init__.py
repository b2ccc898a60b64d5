"""The ``pageview_tags`` template library."""
