"""The deployment files of example_asgi/deploy/, as a site installs them.

Each unit is read as systemd reads it and holds what the guide says; every program its
ExecStart runs is in this virtualenv and every Python path it names imports; the worker's
queues are the routes' and the user's guide's; ``systemd-analyze verify`` accepts the units
where systemd is installed (CI installs it). Then the commands run for real, from the unit
files, against a real Redis and a real SQLite database: the worker consumes its queues,
each web server answers a page and stores its view when the unit stops it, beat starts
with either scheduler, Flower answers, and Redis starts with redis.conf.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

import httpx
import pytest
import redis
from django.test import override_settings

from django_pageviews.checks import check_redis_reachable
from django_pageviews.models import PageView
from django_pageviews.schedules import TASK_ROUTES, TASK_ROUTES_SINGLE_QUEUE
from tests.chaos.restart_servers import group_alive
from tests.conftest import BROWSER_UA
from tests.deploy_units import (
    ALTERNATIVES,
    DEPLOY,
    Unit,
    command,
    environment,
    localize,
    only,
    parse,
    read,
)
from tests.processes import ROOT, free_port, manage, running, wait_for, wait_until_serving
from tests.redis_server import reachable, server_binary

UNITS = [
    "pageviews-web.service",
    "pageviews-worker.service",
    "pageviews-worker@.service",
    "pageviews-beat.service",
    "pageviews-flower.service",
]
# Each drop-in of alternatives/ and the unit it replaces the command of.
DROPINS = {
    "web-gunicorn.conf": "pageviews-web.service",
    "web-daphne.conf": "pageviews-web.service",
    "web-hypercorn.conf": "pageviews-web.service",
    "web-granian.conf": "pageviews-web.service",
    "beat-database-scheduler.conf": "pageviews-beat.service",
}
OTHER_FILES = ["pageviews.env", "redis.conf"]
WEB_SERVERS = {
    "uvicorn": None,
    "gunicorn": "web-gunicorn.conf",
    "daphne": "web-daphne.conf",
    "hypercorn": "web-hypercorn.conf",
    "granian": "web-granian.conf",
}
# What each server logs once per worker process ready to serve: the test stops a server
# only once all its workers are up, as a deploy does (a stop while workers still start is
# another case: see the Deploy guide, "Web servers").
READY = {
    "uvicorn": "Application startup complete.",
    "gunicorn": "Application startup complete.",
    "daphne": "Listening on TCP address",
    "hypercorn": "Running on",
    "granian": "Started worker-",
}
# The queues of the user's guide: `pageviews` for every task, or `pageviews-buffer` and
# `pageviews-process` (its "Separate queues" and "Run dedicated workers").
GUIDE_QUEUES = {"pageviews", "pageviews-buffer", "pageviews-process"}
DATABASE_SCHEDULER_SETTINGS = "tests.deploy_settings"
PORT = "8000"
# Needs the deploy extra; the version matrix's other cells deselect it (noxfile.py).
pytestmark = pytest.mark.deploy
FLOWER_PORT = "5555"


def all_units() -> Iterator[tuple[str, Unit]]:
    for name in UNITS:
        yield name, read(name)
    for dropin, name in DROPINS.items():
        yield f"{name} + {dropin}", read(name, dropin)


def site_env(directory: Path, redis_url: str = "") -> dict[str, str]:
    """pageviews.env as systemd passes it, with this test's database, Redis and demo
    directory (so that no developer's .demo/mode.env reaches it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAGEVIEW_", "TESTS_"))}
    env.update(environment())
    env.update(
        DATABASE_URL=f"sqlite:///{directory / 'site.sqlite3'}",
        REDIS_URL=redis_url,
        DEMO_DIR=str(directory),
    )
    return env


@contextmanager
def unit_running(
    unit: Unit, argv: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The unit's command in a process group of its own, stopped as systemd stops the
    unit: SIGTERM to every process (KillMode=control-group, the default) or to the main
    one (mixed), then a wait of up to TimeoutStopSec for every process of the group
    (control-group) or for the main one (mixed), then SIGKILL to whatever is left."""
    whole_group = "KillMode" not in unit["Service"]
    assert whole_group or only(unit, "Service", "KillMode") == "mixed"
    stop_seconds = float(only(unit, "Service", "TimeoutStopSec"))
    with running(["setsid", *argv], env, log) as process:
        try:
            yield process
            if whole_group:
                os.killpg(process.pid, signal.SIGTERM)
                deadline = time.monotonic() + stop_seconds
                while time.monotonic() < deadline:
                    process.poll()  # reap the main process: a zombie is still in the group
                    if not group_alive(process.pid):
                        break
                    time.sleep(0.1)
            else:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=stop_seconds)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def on_port(argv: list[str], port: str, free: str) -> list[str]:
    """A command with the unit's port replaced by a free one (once, wherever it is)."""
    moved = [re.sub(rf"\b{port}\b", free, arg) for arg in argv]
    assert sum(a != b for a, b in zip(argv, moved, strict=True)) == 1, argv
    return moved


# The files


def test_every_file_is_tested_and_named_in_the_guide() -> None:
    found = {str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*") if p.is_file()}
    expected = {*UNITS, *OTHER_FILES, *(f"alternatives/{d}" for d in DROPINS)}
    assert found == expected
    guide = (ROOT / "docs" / "howto" / "deployment.md").read_text()
    for path in expected:
        assert Path(path).name in guide, path


@pytest.mark.parametrize("name", UNITS)
def test_units_have_what_a_service_needs(name: str) -> None:
    unit = read(name)
    assert only(unit, "Unit", "Description")
    assert "network-online.target" in only(unit, "Unit", "After")
    service = unit["Service"]
    assert only(unit, "Service", "Type") == "exec"  # started = the program was executed
    assert only(unit, "Service", "User") == only(unit, "Service", "Group") == "pageviews"
    assert only(unit, "Service", "EnvironmentFile") == "/etc/pageviews/pageviews.env"
    assert only(unit, "Service", "WorkingDirectory") == "/srv/pageviews/app"
    assert only(unit, "Service", "Restart") == "always"
    assert len(service["ExecStart"]) == 1
    assert only(unit, "Install", "WantedBy") == "multi-user.target"
    if "worker" in name:
        # Warm shutdown of the main process, longer than one drain run (50 s).
        assert only(unit, "Service", "KillMode") == "mixed"
        assert int(only(unit, "Service", "TimeoutStopSec")) > 50
    else:
        assert "KillMode" not in service  # control-group: what tests/chaos sends


@pytest.mark.parametrize("dropin", sorted(DROPINS))
def test_dropins_replace_the_command_only(dropin: str) -> None:
    text = (ALTERNATIVES / dropin).read_text()
    dropped = parse(text)
    assert list(dropped) == ["Service"]
    # An empty ExecStart= first: without it systemd would refuse a second command.
    assert re.search(r"^ExecStart=\n^ExecStart=\S", text, re.M)
    merged = read(DROPINS[dropin], dropin)
    assert merged["Service"]["ExecStart"] == dropped["Service"]["ExecStart"]


def test_the_environment_file() -> None:
    env = environment()
    assert env["DJANGO_SETTINGS_MODULE"] == "example_asgi.settings"
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= set(env)


# Programs and Python paths


def python_paths(argv: list[str]) -> list[tuple[str, str]]:
    """(kind, name) of what a command imports: its Celery app (-A), its ASGI application
    (module:attribute), its scheduler, worker class, loop and HTTP parser."""
    found: list[tuple[str, str]] = []
    for i, arg in enumerate(argv[1:], start=1):
        before = argv[i - 1]
        if before == "-A":
            found.append(("celery-app", arg))
        elif before in ("--scheduler", "--worker-class", "--loop", "--http"):
            found.append(("object" if "." in arg else "module", arg))
        elif re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", arg):
            found.append(("object", arg))
    return found


# As the processes import them: Django set up first (Celery's Django fix-up does it in a
# worker and beat, and get_asgi_application() in a web server).
RESOLVE = """
import importlib, json, sys
import django
django.setup()
from celery import Celery
from celery.app.utils import find_app
from kombu.utils.imports import symbol_by_name

out = {}
for kind, name in json.loads(sys.argv[1]):
    if kind == "celery-app":
        app = find_app(name)
        assert isinstance(app, Celery), name
        out[name] = {
            "routes": app.conf.task_routes,
            "schedule": sorted(app.conf.beat_schedule),
        }
    elif kind == "module":
        importlib.import_module(name)
    else:
        symbol_by_name(name)
print(json.dumps(out))
"""


def resolve(paths: list[tuple[str, str]], env: dict[str, str]) -> dict[str, dict[str, object]]:
    """Import each path as the unit's process would (its environment and directory)."""
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE, json.dumps(paths)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, dict[str, object]] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_every_program_and_python_path_exists(tmp_path: Path) -> None:
    paths: set[tuple[str, str]] = set()
    for name, unit in all_units():
        argv = command(unit, tmp_path, instance="pageviews-process")
        program = Path(argv[0])
        assert program.is_file() and os.access(program, os.X_OK), f"{name}: {program}"
        assert python_paths(argv), name
        paths.update(python_paths(argv))
    assert ("celery-app", "example_asgi") in paths
    assert ("object", "example_asgi.asgi:application") in paths
    assert ("object", "django_celery_beat.schedulers:DatabaseScheduler") in paths
    assert ("object", "uvicorn_worker.UvicornWorker") in paths
    assert {("module", "uvloop"), ("module", "httptools")} <= paths
    # The site's settings with django_celery_beat added, as the scheduler's drop-in asks.
    env = {**site_env(tmp_path), "DJANGO_SETTINGS_MODULE": DATABASE_SCHEDULER_SETTINGS}
    apps = resolve(sorted(paths), env)
    # The Celery app the units name carries the guide's schedule.
    assert apps["example_asgi"]["schedule"] == [
        "cleanup-old-buffer-data",
        "process-pageview-buffer",
    ]


def queues_of(argv: list[str]) -> set[str]:
    return set(argv[argv.index("-Q") + 1].split(","))


def test_the_worker_consumes_the_queues_of_the_routes_and_the_guide(tmp_path: Path) -> None:
    routes = resolve([("celery-app", "example_asgi")], site_env(tmp_path))["example_asgi"]
    assert isinstance(routes["routes"], dict)
    routed = {route["queue"] for route in routes["routes"].values()}
    offered = {r["queue"] for r in [*TASK_ROUTES.values(), *TASK_ROUTES_SINGLE_QUEUE.values()]}
    worker = command(read("pageviews-worker.service"), tmp_path)
    assert queues_of(worker) == routed | offered == GUIDE_QUEUES
    # The dedicated workers: one per queue, named after it.
    for queue in routed:
        dedicated = command(read("pageviews-worker@.service"), tmp_path, instance=queue)
        assert queues_of(dedicated) == {queue}
        assert dedicated[dedicated.index("-n") + 1].startswith(f"{queue}@")


# systemd


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze here (Debian: apt-get install systemd; CI has it)")
    env_file = tmp_path / "pageviews.env"
    env_file.write_text((DEPLOY / "pageviews.env").read_text())
    cases: list[tuple[str, str | None]] = [(name, None) for name in UNITS]
    cases += [(name, dropin) for dropin, name in DROPINS.items()]
    for name, dropin in cases:
        directory = tmp_path / (dropin or name)
        directory.mkdir()
        (directory / name).write_text(
            localize((DEPLOY / name).read_text(), tmp_path / "state", env_file)
        )
        if dropin is not None:
            (directory / f"{name}.d").mkdir()
            (directory / f"{name}.d" / dropin).write_text(
                localize((ALTERNATIVES / dropin).read_text(), tmp_path / "state", env_file)
            )
        target = name.replace("@.", "@pageviews-process.")  # a template needs an instance
        done = subprocess.run(
            [analyze, "verify", "--man=no", str(directory / target)],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # Warnings too (an unknown key or value is only a warning, with status 0).
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), f"{name} {dropin}"


# The commands, for real


@pytest.mark.parametrize("instance", [None, "pageviews-process"])
def test_the_worker_consumes_its_queues_from_redis(
    instance: str | None, redis_url: str, tmp_path: Path
) -> None:
    name = "pageviews-worker.service" if instance is None else "pageviews-worker@.service"
    unit = read(name)
    argv = command(unit, tmp_path, instance=instance or "")
    env = site_env(tmp_path, redis_url)
    log = tmp_path / "worker.log"
    seen: dict[str, list[dict[str, object]]] = {}

    def consuming() -> bool:
        done = subprocess.run(
            [argv[0], "-A", "example_asgi", "inspect", "active_queues", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            return False
        seen.update(json.loads(done.stdout))
        return bool(seen)

    with unit_running(unit, argv, env, log) as process:
        wait_for(consuming, "the worker's answer", explain=log.read_text)
        assert process.poll() is None
    assert process.returncode == 0, log.read_text()  # a warm shutdown
    [(node, queues)] = seen.items()
    assert {q["name"] for q in queues} == queues_of(argv)
    if instance is not None:
        assert node.startswith(f"{instance}@")
    assert "Warm shutdown" in log.read_text() or "warm shutdown" in log.read_text()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's database, migrated once for the web servers."""
    directory = tmp_path_factory.mktemp("site")
    manage(site_env(directory), "migrate", "--noinput")
    return directory


def raw_rows(database: Path) -> int:
    with closing(sqlite3.connect(database)) as connection:
        row = connection.execute(f"SELECT COUNT(*) FROM {PageView._meta.db_table}").fetchone()
    return int(row[0])


@pytest.mark.parametrize("server", sorted(WEB_SERVERS))
def test_each_web_server_serves_and_stores_the_view_at_stop(server: str, site: Path) -> None:
    port = str(free_port())
    unit = read("pageviews-web.service", WEB_SERVERS[server])
    argv = on_port(command(unit, site), PORT, port)
    before = raw_rows(site / "site.sqlite3")
    log = site / f"{server}.log"
    base = f"http://127.0.0.1:{port}"
    workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1
    with unit_running(unit, argv, site_env(site), log) as process:
        wait_until_serving(base + "/", process)
        wait_for(
            lambda: log.read_text().count(READY[server]) == workers,
            f"{workers} {server} workers",
            explain=log.read_text,
        )
        page = httpx.get(base + "/", headers={"user-agent": BROWSER_UA}, timeout=30)
        assert page.status_code == 200
    # Stopped as systemd stops the unit: the view answered 200 was written on the way out.
    assert raw_rows(site / "site.sqlite3") == before + 1, log.read_text()


def beat_log_says(log: Path, text: str) -> bool:
    return text in log.read_text()


def test_beat_starts_with_the_guides_schedule(redis_url: str, tmp_path: Path) -> None:
    unit = read("pageviews-beat.service")
    argv = command(unit, tmp_path / "state")
    state = tmp_path / "state" / "pageviews-beat"
    state.mkdir(parents=True)  # what StateDirectory= makes
    log = tmp_path / "beat.log"

    def scheduling() -> bool:
        # Started, and its schedule file written in the state directory.
        return beat_log_says(log, "beat: Starting...") and any(state.glob("celerybeat-schedule*"))

    with unit_running(unit, argv, site_env(tmp_path, redis_url), log) as process:
        wait_for(scheduling, "beat and its schedule file", explain=log.read_text)
        assert process.poll() is None


def periodic_tasks(database: Path) -> dict[str, str]:
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT name, task FROM django_celery_beat_periodictask")
        return dict(rows.fetchall())


def test_beat_with_the_database_scheduler(redis_url: str, tmp_path: Path) -> None:
    # The drop-in's prerequisite: django_celery_beat installed and migrated.
    env = {**site_env(tmp_path, redis_url), "DJANGO_SETTINGS_MODULE": DATABASE_SCHEDULER_SETTINGS}
    manage(env, "migrate", "--noinput")
    unit = read("pageviews-beat.service", "beat-database-scheduler.conf")
    argv = command(unit, tmp_path)
    log = tmp_path / "beat.log"
    database = tmp_path / "site.sqlite3"
    names = {"process-pageview-buffer", "cleanup-old-buffer-data"}

    def scheduling() -> bool:
        # Both entries stored, and beat past its set-up: a SIGTERM during the set-up
        # (django-celery-beat storing the entries) raises inside a query that it catches,
        # so beat would go on until systemd's SIGKILL.
        started = "DatabaseScheduler: Schedule changed." in log.read_text()
        return started and names <= set(periodic_tasks(database))

    with unit_running(unit, argv, env, log) as process:
        wait_for(scheduling, "the schedule in the database", explain=log.read_text)
        assert process.poll() is None
    assert "Cannot add entry" not in log.read_text()
    tasks = periodic_tasks(database)
    assert tasks["process-pageview-buffer"] == "django_pageviews.tasks.process_pageview_buffer"
    assert tasks["cleanup-old-buffer-data"] == "django_pageviews.tasks.cleanup_old_buffer_data"


def test_flower_answers(redis_url: str, tmp_path: Path) -> None:
    port = str(free_port())
    unit = read("pageviews-flower.service")
    argv = on_port(command(unit, tmp_path), FLOWER_PORT, port)
    log = tmp_path / "flower.log"
    with unit_running(unit, argv, site_env(tmp_path, redis_url), log) as process:
        url = f"http://127.0.0.1:{port}/healthcheck"
        wait_until_serving(url, process)
        assert httpx.get(url, timeout=30).text == "OK"


def test_redis_starts_with_the_snippet_and_passes_the_deploy_check(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    config = DEPLOY / "redis.conf"
    args = [server_binary(), str(config), "--port", str(port), "--bind", "127.0.0.1"]
    with running([*args, "--dir", str(tmp_path)], dict(os.environ), tmp_path / "redis.log"):
        wait_for(lambda: reachable(url), "redis-server", explain=(tmp_path / "redis.log").read_text)
        client = redis.Redis.from_url(url, decode_responses=True)
        try:
            assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
            assert client.config_get("maxmemory") == {"maxmemory": str(2 * 1024**3)}
            assert client.config_get("save") == {"save": "3600 1 300 100 60 10000"}
        finally:
            client.close()
        with override_settings(PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_URL=url):
            assert check_redis_reachable() == []
