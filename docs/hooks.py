"""MkDocs hook: fills the reference pages from the code when the site is built.

A page asks for a generated block with ``<!-- generated: NAME [ARG] -->``. What can be
read from the code is read from it here (settings and their defaults, system checks,
counters, management commands, template tags, signatures, the module map), so the
reference cannot drift from the code; prose around the blocks is hand-written and
tests/test_docs.py checks its facts. Django is set up with a minimal in-memory
configuration, because commands, tags and checks are read from the loaded app.
"""

from __future__ import annotations

import ast
import html
import inspect
import io
import re
import sys
import textwrap
import tokenize
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_pageviews"
MARKER = re.compile(r"<!-- generated: ([\w-]+)(?: ([\w.-]+))? -->")
CHECK_ID = re.compile(r"django_pageviews\.([EWI]\d{3})")

# Layers of the top-level modules (docs/explanation/architecture.md): the way data flows,
# from the request to the database, then the read side. A module not listed here (a new
# one, or one moved) is still shown, under "Other modules"; subpackages are their own group
# (the Redis transport is django_pageviews.redis).
LAYERS: dict[str, tuple[str, ...]] = {
    "Edge: where a view comes in": ("middleware", "mixins", "manual", "recorder", "urls"),
    "Decide: pure rules, no I/O on the request path": (
        "tracking",
        "events",
        "objects",
        "privacy",
        "client_ip",
        "salts",
        "bots",
        "crawlers",
        "paths",
        "throttle",
    ),
    "Buffer and ship": (
        "buffer",
        "flushing",
        "shutdown",
        "wire",
        "toplists",
    ),
    "Drain and store": (
        "tasks",
        "ledger",
        "storage",
        "raw_rows",
        "resolve",
        "url_cap",
        "upsert",
        "totals",
        "visitors",
        "db_errors",
        "upgrade",
        "resumable",
        "partitions",
    ),
    "Models": ("models",),
    "Read": (
        "queries",
        "reports",
        "series",
        "ranking",
        "stored_tops",
        "live",
        "subjects",
        "params",
        "responses",
        "numbers",
        "counted",
        "pipeline_health",
    ),
    "Django wiring": (
        "__init__",
        "apps",
        "conf",
        "checks",
        "routers",
        "content_types",
        "admin",
        "stats",
        "forks",
        "log_limit",
        "schedules",
    ),
}


def setup_django() -> None:
    """The app loaded as a project would load it, with nothing else installed."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=[
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django_pageviews",
            ],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            USE_TZ=True,
        )
    django.setup()


def on_config(config: Any) -> Any:
    setup_django()
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    return expand(markdown)


def expand(markdown: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, arg = match.group(1), match.group(2)
        if name not in GENERATORS:
            raise ValueError(f"unknown generated block {name!r}")
        return GENERATORS[name](arg).rstrip("\n")

    return MARKER.sub(replace, markdown)


# Helpers


def cell(text: str, escape_html: bool = False) -> str:
    """Text fit for one Markdown table cell: on one line, with its pipes escaped outside
    code spans (the table extension leaves those alone); ``escape_html`` for text that
    may hold ``<...>``."""
    parts = re.split(r"(`+[^`]*`+)", " ".join(text.split()))
    for i in range(0, len(parts), 2):
        if escape_html:
            parts[i] = html.escape(parts[i], quote=False)
        parts[i] = parts[i].replace("|", "\\|")
    return "".join(parts)


def summary(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph."""
    if not doc:
        return ""
    paragraph = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())
    return re.split(r"(?<=[.!?])\s+(?=[A-Z`(])", paragraph)[0].rstrip(":")


def module_doc(path: Path) -> str:
    return summary(ast.get_docstring(ast.parse(path.read_text())))


def trailing_comments(source: str) -> dict[int, str]:
    """Line number -> the comment that ends it."""
    found: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string.lstrip("#").strip()
    return found


def signature(func: Callable[..., Any], drop_first: bool = False) -> str:
    """``name(args) -> returns`` as written in the source (annotations unevaluated)."""
    source = textwrap.dedent(inspect.getsource(inspect.unwrap(func)))
    tree = ast.parse(source)
    node = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)][0]
    if drop_first:
        node.args.args = node.args.args[1:]
    prefix = "async " if isinstance(node, ast.AsyncFunctionDef) else ""
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{prefix}{node.name}({ast.unparse(node.args)}){returns}"


# Settings


def settings_table(arg: str | None) -> str:
    from django_pageviews.checks import RULES
    from django_pageviews.conf import PREFIX, PageViewSettings

    expected = {PREFIX + name: text for name, _, _, text in RULES}
    rows = ["| Setting | Default | Valid values |", "| --- | --- | --- |"]
    for name in PageViewSettings.names():
        default = PageViewSettings.default(name)
        rows.append(
            f"| [`{name}`](#{name.lower()}) | `{default!r}` | {cell(expected.get(name, ''))} |"
        )
    return "\n".join(rows)


# System checks


def _message_text(node: ast.expr) -> str:
    """A message as its f-string is written, each value shown as ``<...>``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                expression = ast.unparse(value.value)
                parts.append("PAGEVIEW_" if expression == "PREFIX" else f"<{expression}>")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _message_text(node.left) + _message_text(node.right)
    return ast.unparse(node)


def check_messages() -> dict[str, dict[str, str]]:
    """Check id -> level, message, hint and the function raising it, read from the
    source of django_pageviews.checks (RULES add their ids through one f-string)."""
    from django_pageviews import checks

    tree = ast.parse(Path(checks.__file__).read_text())
    found: dict[str, dict[str, str]] = {}
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef):
            continue
        for call in ast.walk(function):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                continue
            if call.func.id not in ("Error", "Warning", "Info"):
                continue
            keywords = {k.arg: k.value for k in call.keywords}
            ident = keywords.get("id")
            if not (isinstance(ident, ast.Constant) and isinstance(ident.value, str)):
                continue  # the RULES' f-string id
            code = ident.value.removeprefix("django_pageviews.")
            found[code] = {
                "level": call.func.id,
                "message": _message_text(call.args[0]) if call.args else "",
                "hint": _message_text(keywords["hint"]) if "hint" in keywords else "",
                "function": function.name,
            }
    return found


def deploy_only_functions() -> set[str]:
    """Check functions run only by ``check --deploy``: those registered with deploy=True
    and the functions of checks.py they call, less what an ordinary check runs."""
    from django.core.checks.registry import registry

    from django_pageviews import checks

    tree = ast.parse(Path(checks.__file__).read_text())
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}

    def reached(registered: set[Any]) -> set[str]:
        names = {f.__name__ for f in registered if f.__module__ == checks.__name__}
        todo = list(names)
        while todo:
            for node in ast.walk(functions[todo.pop()]):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    name = node.func.id
                    if name in functions and name not in names:
                        names.add(name)
                        todo.append(name)
        return names

    return reached(set(registry.deployment_checks)) - reached(set(registry.registered_checks))


def checks_table(arg: str | None) -> str:
    from django_pageviews.checks import RULES
    from django_pageviews.conf import PREFIX

    rows: dict[str, tuple[str, str, str, str]] = {}
    for name, code, _, expected in RULES:
        rows[code] = ("Error", "start-up", f"`{PREFIX}{name}` must be {expected}.", "")
    deploy = deploy_only_functions()
    for code, found in check_messages().items():
        when = "`check --deploy` only" if found["function"] in deploy else "start-up"
        rows[code] = (found["level"], when, found["message"], found["hint"])
    order = {"E": 0, "W": 1, "I": 2}
    lines = ["| Id | Level | Runs | Raised when | Hint |", "| --- | --- | --- | --- | --- |"]
    for code in sorted(rows, key=lambda c: (order[c[0]], c)):
        level, when, message, hint = rows[code]
        lines.append(
            f'| <span id="{code.lower()}"></span>`django_pageviews.{code}` | {level} | '
            f"{when} | {cell(message, escape_html=True)} | {cell(hint, escape_html=True)} |"
        )
    return "\n".join(lines)


# Counters


def _string_constants(path: Path) -> Iterator[tuple[str, str, str]]:
    """(constant name, value, trailing comment) of each module-level string constant."""
    source = path.read_text()
    comments = trailing_comments(source)
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            yield node.targets[0].id, node.value.value, comments.get(node.lineno, "")


def counter_names() -> dict[str, tuple[str, str, str]]:
    """Counter name -> (where it is defined, constant, description) for every name the
    package passes to ``stats.incr``: the constants of stats.py, and the module-level
    constants of other modules used as ``stats.incr(NAME, ...)``."""
    from django_pageviews import stats

    stats_path = Path(stats.__file__)
    found: dict[str, tuple[str, str, str]] = {}
    for constant, value, comment in _string_constants(stats_path):
        if constant.isupper():
            found[value] = ("stats", constant, comment)
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts or path == stats_path:
            continue
        tree = ast.parse(path.read_text())
        used = {
            call.args[0].id
            for call in ast.walk(tree)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "incr"
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "stats"
            and call.args
            and isinstance(call.args[0], ast.Name)
        }
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for constant, value, comment in _string_constants(path):
            if constant in used:
                found[value] = (module, constant, comment)
    return found


def counters_table(arg: str | None) -> str:
    from django_pageviews import stats

    names = counter_names()
    if arg == "reasons":
        chosen = sorted(n for n in names if n in stats.SKIP_REASONS)
    else:
        chosen = sorted(n for n in names if n not in stats.SKIP_REASONS)
    lines = ["| Counter | Defined in | Meaning |", "| --- | --- | --- |"]
    for name in chosen:
        module, constant, comment = names[name]
        lines.append(f"| `{name}` | `{module}.{constant}` | {cell(comment)} |")
    return "\n".join(lines)


# Prometheus metrics


def metrics_table(arg: str | None) -> str:
    """Every family the collector can report, as ``describe`` names them."""
    from django_pageviews.metrics.collector import LABELS, PageViewsCollector

    lines = ["| Metric | Type | Labels | Meaning |", "| --- | --- | --- | --- |"]
    for family in PageViewsCollector(process_counters=True).describe():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = ", ".join(f"`{label}`" for label in LABELS.get(family.name, ()))
        lines.append(
            f"| `{name}` | {family.type} | {labels or '-'} | {cell(family.documentation)} |"
        )
    return "\n".join(lines)


def alert_rules(arg: str | None) -> str:
    """The example alerting rules, as the file holds them."""
    text = (ROOT / "docs" / "howto" / "pageviews-alerts.yml").read_text()
    return f"```yaml\n{text}```"


# Management commands


def command_names() -> list[str]:
    from django.core.management import find_commands

    return sorted(find_commands(str(PACKAGE / "management")))


def command_help(name: str | None) -> str:
    from django.core.management import BaseCommand, load_command_class

    assert name, "which command?"
    command = load_command_class("django_pageviews", name)
    parser = command.create_parser("manage.py", name)
    common = {a.dest for a in BaseCommand().create_parser("manage.py", "x")._actions}
    lines = [f"`manage.py {name} --help`: {cell(str(command.help))}", ""]
    for action in parser._actions:
        if action.dest in common:
            continue
        if action.nargs == 0:
            usage = ", ".join(action.option_strings)
        else:
            metavar = action.metavar or action.dest.upper()
            shown = f"[{metavar} ...]" if action.nargs == "*" else str(metavar)
            usage = ", ".join(f"{option} {shown}" for option in action.option_strings)
        text = (action.help or "") % {"default": action.default}
        lines.append(f"- `{usage}`: {cell(text)}")
    return "\n".join(lines)


def commands_rest(arg: str | None) -> str:
    """Every command, for a page that lists them all: a heading and its help each."""
    return "\n\n".join(f"### {name}\n\n{command_help(name)}" for name in command_names())


# Template tags


def template_library() -> str:
    from django_pageviews.templatetags import pageview_tags

    lines = ["| Name | Kind | Arguments | What it gives |", "| --- | --- | --- | --- |"]
    library = pageview_tags.register
    entries = [("tag", n, f) for n, f in library.tags.items()]
    entries += [("filter", n, f) for n, f in library.filters.items()]
    for kind, name, compiled in sorted(entries, key=lambda e: (e[1], e[0])):
        func = inspect.unwrap(compiled)
        params = inspect.signature(func).parameters
        takes_context = next(iter(params), "") == "context"
        text = signature(func, drop_first=takes_context)
        arguments = text[text.index("(") : text.rindex(")") + 1]
        lines.append(f"| `{name}` | {kind} | `{cell(arguments)}` | {cell(summary(func.__doc__))} |")
    return "\n".join(lines)


# Python API


def api_signatures(arg: str | None) -> str:
    import django_pageviews
    from django_pageviews import queries
    from django_pageviews.mixins import PageViewMixin
    from django_pageviews.models import PageView

    blocks: list[str] = []

    def entry(dotted: str, func: Callable[..., Any], doc: str | None) -> None:
        text = signature(func)
        blocks.append(f"`{dotted}{text[text.index('(') :]}`\n: {cell(summary(doc)) or '-'}\n")

    blocks.append("### `django_pageviews.models.PageView`\n")
    for name, member in vars(PageView).items():
        if isinstance(member, staticmethod | classmethod) and not name.startswith("_"):
            func = member.__func__
            doc = func.__doc__ or (f"Async twin of `{name[1:]}`." if name.startswith("a") else None)
            entry(f"PageView.{name}", func, doc)
    blocks.append("### `django_pageviews.mixins.PageViewMixin`\n")
    for name, member in vars(PageViewMixin).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property) and member.fget is not None:
            blocks.append(f"`PageViewMixin.{name}` (property)\n: {cell(summary(member.__doc__))}\n")
        elif isinstance(member, classmethod):
            entry(f"PageViewMixin.{name}", member.__func__, member.__func__.__doc__)
        elif inspect.isfunction(member):
            entry(f"PageViewMixin.{name}", member, member.__doc__)
    blocks.append("### `django_pageviews`\n")
    for name in django_pageviews.__all__:
        func = getattr(django_pageviews, name)
        entry(f"django_pageviews.{name}", func, func.__doc__)
    blocks.append("### `django_pageviews.queries`\n")
    for name, func in vars(queries).items():
        public = not name.startswith("_")
        if public and inspect.isfunction(func) and func.__module__ == queries.__name__:
            entry(f"queries.{name}", func, func.__doc__)
    return "\n".join(blocks)


# Module map


def dotted_name(relative: Path) -> str:
    """``api/views.py`` -> ``django_pageviews.api.views``; a package is its ``__init__``."""
    parts = relative.with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("django_pageviews", *parts))


def module_map(arg: str | None) -> str:
    groups: dict[str, list[tuple[str, str]]] = {}
    layer_of = {m: layer for layer, modules in LAYERS.items() for m in modules}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "migrations":
            continue
        doc = module_doc(path)
        if path.name == "__init__.py" and len(relative.parts) > 1 and not doc:
            continue  # a bare package marker
        dotted = dotted_name(relative)
        if len(relative.parts) == 1:
            group = layer_of.get(path.stem, "Other modules")
        else:
            group = "Subpackage `" + ".".join(("django_pageviews", *relative.parts[:-1])) + "`"
        groups.setdefault(group, []).append((dotted, doc))
    order = [*LAYERS, "Other modules"]
    ranked = sorted(groups, key=lambda g: (order.index(g) if g in order else len(order), g))
    out = []
    for group in ranked:
        out.append(f"### {group}\n\n| Module | What it is for |\n| --- | --- |")
        for dotted, doc in groups[group]:
            out.append(f"| `{dotted}` | {cell(doc) or '-'} |")
        out.append("")
    return "\n".join(out)


GENERATORS: dict[str, Callable[[str | None], str]] = {
    "settings-table": settings_table,
    "checks": checks_table,
    "counters": counters_table,
    "metrics": metrics_table,
    "alert-rules": alert_rules,
    "command": command_help,
    "commands-rest": commands_rest,
    "template-tags": lambda arg: template_library(),
    "python-api": api_signatures,
    "module-map": module_map,
}
