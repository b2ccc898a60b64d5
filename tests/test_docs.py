"""The docs site states facts about the code: each is checked here against the code.

The site is built once, strictly (a broken link or anchor, a page missing from the nav,
a generated block the hook cannot fill: all fail), into a temporary directory, with
nothing fetched from the network. Then every setting, check id, counter, management
command and template tag in the code must be in the reference, and nothing the
reference names may be missing from the code.
"""

from __future__ import annotations

import ast
import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from django_pageviews import stats
from django_pageviews.bots import is_bot
from django_pageviews.checks import RULES
from django_pageviews.conf import PageViewSettings
from django_pageviews.templatetags.pageview_tags import register

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = ROOT / "django_pageviews"
README = ROOT / "README.md"
SETTING = re.compile(r"\bPAGEVIEW_[A-Z][A-Z_]*[A-Z]\b")
CHECK_ID = re.compile(r"\bdjango_pageviews\.([EWI]\d{3})\b")
# Pages that record history (decisions name what was, benchmarks are generated):
# not held to the current names.
HISTORY = {"decisions.md", "benchmarks.md"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-5000:]
    return out


def page(site: Path, name: str) -> str:
    """The built HTML of docs/<name>.md."""
    return (site / name / "index.html").read_text()


def text_of(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def doc_sources() -> dict[str, str]:
    """Every Markdown page and the README, by path, history pages left out."""
    found = {
        str(p.relative_to(ROOT)): p.read_text()
        for p in DOCS.rglob("*.md")
        if p.name not in HISTORY and "profiles" not in p.parts
    }
    found["README.md"] = README.read_text()
    return found


def sections(markdown: str, level: str = "###") -> dict[str, str]:
    """Heading text -> the text under it, up to the next heading of that level or above."""
    parts = re.split(rf"^(#{{2,{len(level)}}}) (.+)$", markdown, flags=re.M)
    return {parts[i + 1].strip(): parts[i + 2] for i in range(1, len(parts) - 2, 3)}


def code_check_ids() -> set[str]:
    source = (PACKAGE / "checks.py").read_text()
    return {code for _, code, _, _ in RULES} | set(
        re.findall(r'id="django_pageviews\.([EWI]\d{3})"', source)
    )


def test_the_site_builds_strictly(site: Path) -> None:
    assert (site / "index.html").exists()
    assert (site / "reference" / "settings" / "index.html").exists()


# Settings


@pytest.mark.parametrize("name", PageViewSettings.names())
def test_every_setting_has_a_reference_entry(site: Path, name: str) -> None:
    assert f'id="{name.lower()}"' in page(site, "reference/settings"), name


def test_every_documented_setting_exists() -> None:
    names = set(PageViewSettings.names())
    headed = {
        h for h in sections((DOCS / "reference/settings.md").read_text()) if h[:9] == "PAGEVIEW_"
    }
    assert headed == names
    for path, text in doc_sources().items():
        assert set(SETTING.findall(text)) <= names, path


@pytest.mark.parametrize("name", PageViewSettings.names())
def test_the_documented_default_is_the_code_default(name: str) -> None:
    body = sections((DOCS / "reference/settings.md").read_text())[name]
    found = re.search(r"Default:\s+`([^`]+)`", body)
    assert found, f"{name}: no 'Default: `...`'"
    assert ast.literal_eval(found.group(1)) == PageViewSettings.default(name), name


# System checks


@pytest.mark.parametrize("code", sorted(code_check_ids()))
def test_every_check_id_is_in_the_reference(site: Path, code: str) -> None:
    assert f"django_pageviews.{code}" in text_of(page(site, "reference/checks")), code


def test_every_documented_check_id_exists(site: Path) -> None:
    known = code_check_ids()
    assert set(CHECK_ID.findall(text_of(page(site, "reference/checks")))) == known
    for path, text in doc_sources().items():
        assert set(CHECK_ID.findall(text)) <= known, path


def test_the_checks_table_is_in_order(site: Path) -> None:
    listed = CHECK_ID.findall(text_of(page(site, "reference/checks")).split("Notes:")[0])
    first = list(dict.fromkeys(listed))
    assert first == sorted(first, key=lambda c: ("EWI".index(c[0]), c))


# Counters


def stats_counter_names() -> set[str]:
    source = (PACKAGE / "stats.py").read_text()
    return set(re.findall(r'^[A-Z_]+ = "([a-z_]+)"', source, re.M))


@pytest.mark.parametrize("name", sorted(stats_counter_names()))
def test_every_counter_of_stats_is_in_the_reference(site: Path, name: str) -> None:
    assert f"<code>{name}</code>" in page(site, "reference/counters"), name


def test_every_documented_counter_is_counted_by_the_code(site: Path) -> None:
    source = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    tables = re.findall(r"<tr>\s*<td><code>([a-z_]+)</code></td>", page(site, "reference/counters"))
    assert tables
    for name in tables:
        assert f'"{name}"' in source, name
    assert "tracking_error" not in "\n".join(doc_sources().values())


def test_the_fallback_counters_are_the_reasons_the_code_gives() -> None:
    reasons = set()
    for path in PACKAGE.rglob("*.py"):
        reasons |= set(re.findall(r'\.handle\([^)]*"(\w+)"\)', path.read_text()))
    assert reasons == {"redis_down", "overflow"}
    text = (DOCS / "reference/counters.md").read_text()
    for reason in reasons:
        assert f"`spilled_{reason}`" in text and f"`dropped_{reason}`" in text, reason


# Management commands and template tags


def command_names() -> list[str]:
    folder = PACKAGE / "management" / "commands"
    return sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("name", command_names())
def test_every_command_is_in_the_reference(site: Path, name: str) -> None:
    built = page(site, "reference/commands")
    assert f'id="{name}"' in built, name
    assert f"manage.py {name} --help" in text_of(built), name  # its generated help


def test_every_documented_command_exists() -> None:
    headed = set(sections((DOCS / "reference/commands.md").read_text(), "##"))
    assert headed == set(command_names())


@pytest.mark.parametrize("name", sorted(set(register.tags) | set(register.filters)))
def test_every_template_tag_is_in_the_reference(site: Path, name: str) -> None:
    assert f"<code>{name}</code>" in page(site, "reference/template-tags"), name


def test_every_documented_template_tag_exists() -> None:
    text = (DOCS / "reference/template-tags.md").read_text()
    tags = set(re.findall(r"{%\s*(\w+)", text)) - {"load"}
    filters = set(re.findall(r"\|(\w+)", text)) - {"default"}
    assert tags and tags <= set(register.tags)
    assert filters and filters <= set(register.filters)


# The module map and the rest


def test_the_module_map_shows_every_module(site: Path) -> None:
    built = page(site, "explanation/architecture")
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "migrations":
            continue
        parts = relative.with_suffix("").parts
        if parts[-1] == "__init__":
            if len(parts) > 1 and not ast.get_docstring(ast.parse(path.read_text())):
                continue  # a bare package marker
            parts = parts[:-1]
        dotted = ".".join(("django_pageviews", *parts))
        assert f"<code>{dotted}</code>" in built, dotted
    assert "Other modules" not in built  # each top-level module is in a layer (docs/hooks.py)


@pytest.mark.parametrize("agent", ["curl/8.5.0", "Wget/1.21.4", "python-requests/2.32.3"])
def test_the_clients_the_docs_call_bots_are_bots(agent: str) -> None:
    assert is_bot(agent)
    assert agent.split("/")[0].lower() in README.read_text().lower()


def test_the_readme_is_a_front_door() -> None:
    text = README.read_text()
    assert len(text.splitlines()) < 250
    for command in (
        "python -m pip install django-pageviews",
        "./scripts/demo.sh",
        "./scripts/test.sh",
    ):
        assert f"\n{command}\n" in text, command
    assert "libmariadb-dev" in text  # said before the test command needs it
    assert "**admin**" in text
    for target in re.findall(r"\]\(((?:docs/|CHANGELOG)[^)#]*)", text):
        assert (ROOT / target).exists(), target


def test_every_reason_is_a_constant_of_stats() -> None:
    """The reasons table is SKIP_REASONS: each reason is one of the names checked above."""
    assert set(stats.SKIP_REASONS) - stats_counter_names() == set()
