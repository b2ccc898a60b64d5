"""Mint a signed token for the stats API (django_pageviews/api/tokens.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_pageviews.api.tokens import mint

UNITS = {"m": "minutes", "h": "hours", "d": "days"}
LIFETIME = re.compile(r"(\d{1,6})([mhd])", re.ASCII)


def lifetime(text: str) -> timedelta:
    """'30m', '12h' or '7d'."""
    match = LIFETIME.fullmatch(text.strip())
    if match is None:
        raise CommandError(
            f"--expires must be minutes, hours or days (30m, 12h, 7d), not {text!r}."
        )
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = (
        "Print a signed token for the stats API, sent as 'Authorization: Bearer <token>'. "
        "Scopes: 'all', 'top', 'metrics', 'url:/path/', 'object:app_label.model:pk', 'view:name'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scope",
            action="append",
            required=True,
            help="What the token may read; repeat for several.",
        )
        parser.add_argument(
            "--expires",
            default="1d",
            help="Lifetime: 30m, 12h, 7d (default 1d, at most 366d).",
        )

    def handle(self, *args: Any, scope: list[str], expires: str, **options: Any) -> None:
        try:
            token = mint(scope, lifetime(expires))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(token)
