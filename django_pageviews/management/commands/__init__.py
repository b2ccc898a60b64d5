"""The management commands: pageviews_flush, pageviews_status, pageviews_token, clean_pageviews."""
