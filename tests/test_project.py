"""Project-level promises: migrations match the models, every setting is documented."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from django_pageviews.checks import RULES
from django_pageviews.conf import PageViewSettings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


@pytest.mark.django_db
def test_no_missing_migrations() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.parametrize("name", PageViewSettings.names())
def test_every_setting_has_a_readme_heading(name: str) -> None:
    assert re.search(rf"^###+ `?{name}`?\s*$", README, re.MULTILINE), name


@pytest.mark.parametrize("code", [code for _, code, _, _ in RULES] + ["E013", "E020", "E030"])
def test_every_check_id_is_documented(code: str) -> None:
    assert f"django_pageviews.{code}" in README
