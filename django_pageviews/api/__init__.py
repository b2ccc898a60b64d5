"""The read-only stats API (views, access rules, signed tokens)."""
