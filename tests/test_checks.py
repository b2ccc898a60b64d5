"""System checks: each wrong setting is exactly one named error; none needs a database."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.core.checks import CheckMessage, Error
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_pageviews.checks import (
    ASYNC_MODULES,
    RULES,
    check_async_dependencies,
    check_middleware_order,
    check_redis_reachable,
    check_settings,
)
from django_pageviews.conf import PREFIX, PageViewSettings
from tests.redis_server import PrivateRedis

CODES = {name: code for name, code, _valid, _expected in RULES}

BAD_VALUES: list[tuple[str, Any]] = [
    ("THROTTLE_SECONDS", -1),
    ("THROTTLE_SECONDS", True),
    ("THROTTLE_SECONDS", 1.5),
    ("THROTTLE_SECONDS", "20"),
    ("THROTTLE_SECONDS", None),
    ("BATCH_SIZE", 0),
    ("BATCH_SIZE", -5),
    ("BATCH_SIZE", "100"),
    ("BATCH_SIZE", True),
    ("BATCH_SIZE", 100.0),
    ("BATCH_SIZE", 50_001),
    ("BUFFER_TIMEOUT", 0),
    ("BUFFER_TIMEOUT", -1.5),
    ("BUFFER_TIMEOUT", True),
    ("BUFFER_TIMEOUT", "300"),
    ("BUFFER_TIMEOUT", float("nan")),
    ("ASYNC_PROCESSING", "yes"),
    ("ASYNC_PROCESSING", 1),
    ("ASYNC_PROCESSING", None),
    ("BOT_PATTERNS", "bot"),
    ("BOT_PATTERNS", ["bot", 1]),
    ("BOT_PATTERNS", None),
    ("BOT_PATTERNS", {"bot"}),
    ("EXCLUDE_ADMIN", "False"),
    ("EXCLUDE_ADMIN", 0),
    ("EXCLUDE_AJAX", "True"),
    ("EXCLUDE_AJAX", None),
    ("EXCLUDE_PATHS", [1]),
    ("EXCLUDE_PATHS", "/static/"),
    ("EXCLUDE_PATHS", [b"/static/"]),
    ("EXCLUDE_IP_ADDRESSES", ["not-an-ip"]),
    ("EXCLUDE_IP_ADDRESSES", ["10.0.0.0/33"]),
    ("EXCLUDE_IP_ADDRESSES", ["10.0.0.1", "999.0.0.1"]),
    ("EXCLUDE_IP_ADDRESSES", "10.0.0.1"),
    ("EXCLUDE_IP_ADDRESSES", [167772161]),
    ("STORE_RAW", "no"),
    ("STORE_RAW", 1),
    ("STORE_IP", 1),
    ("STORE_IP", "True"),
    ("MAX_BUFFER_SIZE", 0),
    ("MAX_BUFFER_SIZE", -1),
    ("MAX_BUFFER_SIZE", "100000"),
    ("MAX_BUFFER_SIZE", True),
    ("MAX_BUFFER_AGE", 0),
    ("MAX_BUFFER_AGE", -1),
    ("MAX_BUFFER_AGE", True),
    ("MAX_BUFFER_AGE", "1"),
    ("MAX_BUFFER_AGE", None),
    ("MAX_BUFFER_AGE", float("inf")),
    ("REDIS_URL", ""),
    ("REDIS_URL", "localhost:6379"),
    ("REDIS_URL", "http://localhost:6379/0"),
    ("REDIS_URL", "amqp://guest@rabbit//"),
    ("REDIS_URL", "REDIS://localhost:6379/0"),
    ("REDIS_URL", b"redis://localhost:6379/0"),
    ("REDIS_URL", 6379),
    ("REDIS_URL", False),
    ("REDIS_CLUSTER", "yes"),
    ("REDIS_CLUSTER", 1),
    ("REDIS_CLUSTER", None),
    ("REDIS_SENTINELS", "sentinel-1:26379"),
    ("REDIS_SENTINELS", [("sentinel-1", "26379")]),
    ("REDIS_SENTINELS", [("sentinel-1",)]),
    ("REDIS_SENTINELS", [("", 26379)]),
    ("REDIS_SENTINELS", [("sentinel-1", 70000)]),
    ("REDIS_SENTINELS", None),
    ("REDIS_SOCKET_TIMEOUT", 0),
    ("REDIS_SOCKET_TIMEOUT", -0.5),
    ("REDIS_SOCKET_TIMEOUT", True),
    ("REDIS_SOCKET_TIMEOUT", "0.5"),
    ("REDIS_SOCKET_TIMEOUT", None),
    ("REDIS_SOCKET_TIMEOUT", float("nan")),
    ("REDIS_CONNECT_TIMEOUT", 0),
    ("REDIS_CONNECT_TIMEOUT", -1),
    ("REDIS_CONNECT_TIMEOUT", False),
    ("REDIS_CONNECT_TIMEOUT", "1"),
    ("REDIS_CONNECT_TIMEOUT", None),
    ("KEY_PREFIX", ""),
    ("KEY_PREFIX", "page views"),
    ("KEY_PREFIX", " pageviews"),
    ("KEY_PREFIX", "pageviews\t"),
    ("KEY_PREFIX", "page\nviews"),
    ("KEY_PREFIX", "{pageviews}"),
    ("KEY_PREFIX", "pageviews}"),
    ("KEY_PREFIX", "{pageviews"),
    ("KEY_PREFIX", None),
    ("KEY_PREFIX", b"pageviews"),
    ("KEY_PREFIX", 1),
    ("BUFFER_SHARDS", 0),
    ("BUFFER_SHARDS", -1),
    ("BUFFER_SHARDS", 1025),
    ("BUFFER_SHARDS", 2.0),
    ("BUFFER_SHARDS", "3"),
    ("BUFFER_SHARDS", True),
    ("BUFFER_SHARDS", None),
    ("SHIP_INTERVAL", 0),
    ("SHIP_INTERVAL", -0.05),
    ("SHIP_INTERVAL", True),
    ("SHIP_INTERVAL", "0.05"),
    ("SHIP_INTERVAL", None),
    ("SHIP_BATCH_SIZE", 0),
    ("SHIP_BATCH_SIZE", -1),
    ("SHIP_BATCH_SIZE", 5001),
    ("SHIP_BATCH_SIZE", 10**6),
    ("SHIP_BATCH_SIZE", True),
    ("SHIP_BATCH_SIZE", 500.0),
    ("SHIP_BATCH_SIZE", "500"),
    ("LOCAL_QUEUE_SIZE", 0),
    ("LOCAL_QUEUE_SIZE", -1),
    ("LOCAL_QUEUE_SIZE", True),
    ("LOCAL_QUEUE_SIZE", 1.5),
    ("LOCAL_QUEUE_SIZE", "50000"),
    ("REDIS_FALLBACK", "Spill"),
    ("REDIS_FALLBACK", "DROP"),
    ("REDIS_FALLBACK", "queue"),
    ("REDIS_FALLBACK", ""),
    ("REDIS_FALLBACK", None),
    ("REDIS_FALLBACK", True),
    ("REDIS_FALLBACK", ["spill"]),
    ("FLUSH_TIME_BUDGET", 0),
    ("FLUSH_TIME_BUDGET", -1),
    ("FLUSH_TIME_BUDGET", True),
    ("FLUSH_TIME_BUDGET", "50"),
    ("FLUSH_TIME_BUDGET", None),
    ("FLUSH_TIME_BUDGET", float("nan")),
    ("DRAIN_TRANSACTION_SIZE", -1),
    ("DRAIN_TRANSACTION_SIZE", 1_000_001),
    ("DRAIN_TRANSACTION_SIZE", 5000.0),
    ("DRAIN_TRANSACTION_SIZE", True),
    ("DRAIN_TRANSACTION_SIZE", None),
    ("EARLY_FLUSH_THRESHOLD", -1),
    ("EARLY_FLUSH_THRESHOLD", 10.5),
    ("EARLY_FLUSH_THRESHOLD", 10_000.0),
    ("EARLY_FLUSH_THRESHOLD", True),
    ("EARLY_FLUSH_THRESHOLD", "10000"),
    ("EARLY_FLUSH_THRESHOLD", None),
    ("EARLY_FLUSH_INTERVAL", 0),
    ("EARLY_FLUSH_INTERVAL", -10),
    ("EARLY_FLUSH_INTERVAL", True),
    ("EARLY_FLUSH_INTERVAL", "10"),
    ("EARLY_FLUSH_INTERVAL", None),
    ("PROCESSED_BATCH_RETENTION_DAYS", 0),
    ("PROCESSED_BATCH_RETENTION_DAYS", -7),
    ("PROCESSED_BATCH_RETENTION_DAYS", True),
    ("PROCESSED_BATCH_RETENTION_DAYS", 7.0),
    ("PROCESSED_BATCH_RETENTION_DAYS", "7"),
    ("PROCESSED_BATCH_RETENTION_DAYS", None),
    ("DATABASE", "nowhere"),
    ("DATABASE", 1),
    ("DATABASE", ""),
    ("RAW_RETENTION_DAYS", 0),
    ("RAW_RETENTION_DAYS", 30.0),
    ("RAW_RETENTION_DAYS", "30"),
    ("RAW_RETENTION_DAYS", True),
    ("RAW_PARTITIONS", "yes"),
    ("RAW_PARTITIONS", 1),
    ("RESPECT_DNT", "yes"),
    ("RESPECT_DNT", 1),
    ("COUNT_VISITORS", "no"),
    ("COUNT_VISITORS", 0),
    ("ANONYMIZE_IP", True),
    ("ANONYMIZE_IP", "none"),
    ("TRUSTED_PROXIES", "10.0.0.0/8"),
    ("TRUSTED_PROXIES", ["proxy.example"]),
    ("PROXY_COUNT", -1),
    ("PROXY_COUNT", "1"),
    ("CLIENT_IP_HEADER", "X-Client-IP"),
    ("CLIENT_IP_HEADER", None),
    ("TRACK_QUERY_STRING", "page"),
    ("TRACK_QUERY_STRING", [1]),
    ("MAX_NEW_URLS_PER_DAY", -1),
    ("MAX_NEW_URLS_PER_DAY", 1.5),
    ("TRAILING_SLASH", "add"),
    ("TRAILING_SLASH", True),
    ("API_MAX_AGE", -1),
    ("API_MAX_AGE", 1.5),
    ("API_MAX_AGE", "60"),
    ("BEACON_MAX_AGE", 0),
    ("BEACON_MAX_AGE", 7 * 86_400 + 1),
    ("BEACON_MAX_AGE", 3600.0),
    ("BEACON_MAX_AGE", True),
    ("METRICS_ALLOWED_IPS", "10.0.0.0/8"),
    ("METRICS_ALLOWED_IPS", ["not-a-network"]),
    ("PUBLIC_COUNTERS", "/blog/*"),
    ("PUBLIC_COUNTERS", ["blog/*"]),
    ("PUBLIC_COUNTERS", ["tests.nosuchmodel"]),
    ("PUBLIC_COUNTERS", ["/blog/*", ""]),
    ("PUBLIC_COUNTERS", [None]),
    ("PUBLIC_COUNTERS", ["article"]),
    ("COUNTER_MAX_AGE", -5),
    ("COUNTER_MAX_AGE", None),
    ("COUNTER_MAX_AGE", True),
]

GOOD_VALUES: list[tuple[str, Any]] = [
    ("THROTTLE_SECONDS", 0),
    ("THROTTLE_SECONDS", 3600),
    ("BATCH_SIZE", 1),
    ("BUFFER_TIMEOUT", 0.5),
    ("BUFFER_TIMEOUT", 1e-3),
    ("BUFFER_TIMEOUT", 10),
    ("ASYNC_PROCESSING", False),
    ("BOT_PATTERNS", []),
    ("BOT_PATTERNS", ("bot", "crawl")),
    ("EXCLUDE_ADMIN", False),
    ("EXCLUDE_AJAX", False),
    ("EXCLUDE_PATHS", []),
    ("EXCLUDE_PATHS", ("/health/", "/metrics")),
    ("EXCLUDE_IP_ADDRESSES", ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::1"]),
    ("EXCLUDE_IP_ADDRESSES", ("10.1.2.3/8",)),
    ("STORE_RAW", False),
    ("STORE_IP", True),
    ("MAX_BUFFER_SIZE", 100),
    ("MAX_BUFFER_SIZE", 10**9),
    ("MAX_BUFFER_AGE", 0.25),
    ("MAX_BUFFER_AGE", 300),
    ("REDIS_URL", None),
    ("REDIS_URL", "redis://localhost:6379/0"),
    ("REDIS_URL", "redis://:secret@10.0.0.5:6380/3"),
    ("REDIS_URL", "rediss://redis.example.com:6380/0?ssl_cert_reqs=required"),
    ("REDIS_URL", "unix:///run/redis/redis.sock?db=2"),
    ("REDIS_CLUSTER", True),
    ("REDIS_SENTINELS", [("sentinel-1", 26379), ["sentinel-2", 26380]]),
    ("REDIS_SOCKET_TIMEOUT", 2),
    ("REDIS_SOCKET_TIMEOUT", 0.05),
    ("REDIS_CONNECT_TIMEOUT", 1),
    ("REDIS_CONNECT_TIMEOUT", 0.1),
    ("KEY_PREFIX", "pv"),
    ("KEY_PREFIX", "site-1:pageviews"),
    ("KEY_PREFIX", "a.b_c/d"),
    ("BUFFER_SHARDS", 1),
    ("BUFFER_SHARDS", 3),
    ("BUFFER_SHARDS", 1024),
    ("SHIP_INTERVAL", 1),
    ("SHIP_INTERVAL", 0.001),
    ("SHIP_BATCH_SIZE", 1),
    ("SHIP_BATCH_SIZE", 5000),
    ("LOCAL_QUEUE_SIZE", 1),
    ("LOCAL_QUEUE_SIZE", 10**7),
    ("REDIS_FALLBACK", "drop"),
    ("REDIS_FALLBACK", "spill"),
    ("FLUSH_TIME_BUDGET", 0.5),
    ("FLUSH_TIME_BUDGET", 300),
    ("DRAIN_TRANSACTION_SIZE", 0),
    ("DRAIN_TRANSACTION_SIZE", 1_000_000),
    ("EARLY_FLUSH_THRESHOLD", 0),
    ("EARLY_FLUSH_THRESHOLD", 1),
    ("EARLY_FLUSH_THRESHOLD", 10**9),
    ("EARLY_FLUSH_INTERVAL", 0.5),
    ("EARLY_FLUSH_INTERVAL", 60),
    ("PROCESSED_BATCH_RETENTION_DAYS", 1),
    ("PROCESSED_BATCH_RETENTION_DAYS", 365),
    ("DATABASE", "default"),
    ("DATABASE", "pageviews"),
    ("RAW_RETENTION_DAYS", 1),
    ("RAW_RETENTION_DAYS", 400),
    ("RAW_PARTITIONS", False),
    ("RESPECT_DNT", True),
    ("COUNT_VISITORS", False),
    ("ANONYMIZE_IP", "omit"),
    ("TRUSTED_PROXIES", ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]),
    ("PROXY_COUNT", 2),
    ("CLIENT_IP_HEADER", "Forwarded"),
    ("CLIENT_IP_HEADER", "CF-Connecting-IP"),
    ("TRACK_QUERY_STRING", ["page", "q"]),
    ("MAX_NEW_URLS_PER_DAY", 0),
    ("TRAILING_SLASH", "append"),
    ("TRAILING_SLASH", "strip"),
    ("TRAILING_SLASH", "keep"),
    ("API_MAX_AGE", 0),
    ("PUBLIC_COUNTERS", ["/blog/*", "tests.article", "tests.Document", "/"]),
    ("PUBLIC_COUNTERS", ("/about/",)),
    ("COUNTER_MAX_AGE", 86_400),
    ("BEACON_MAX_AGE", 1),
    ("BEACON_MAX_AGE", 7 * 86_400),
    ("METRICS_ALLOWED_IPS", ["10.0.0.0/8", "::1", "192.168.1.5"]),
]

# E013 (MAX_BUFFER_SIZE < BATCH_SIZE), E020 (async libraries missing) and E030 (Redis
# unreachable, under --deploy) are not per-setting rules, so the rule ids skip them.
RULE_IDS = [
    *(f"E{i:03d}" for i in range(1, 13)),
    "E036",  # MAX_BUFFER_AGE, next to MAX_BUFFER_SIZE
    "E014",
    "E044",  # REDIS_CLUSTER, next to REDIS_URL
    "E046",  # REDIS_SENTINELS
    *(f"E{i:03d}" for i in range(15, 18)),
    "E054",  # BUFFER_SHARDS, next to KEY_PREFIX
    "E018",
    "E019",
    *(f"E{i:03d}" for i in range(21, 24)),
    "E037",  # DRAIN_TRANSACTION_SIZE, next to FLUSH_TIME_BUDGET
    *(f"E{i:03d}" for i in range(24, 27)),
    "E048",  # DATABASE, RAW_RETENTION_DAYS and RAW_PARTITIONS: storage, after the drain's
    "E052",
    "E053",
    "E027",
    "E042",  # COUNT_VISITORS, next to the other privacy settings
    "E035",  # ANONYMIZE_IP, next to the other privacy settings
    "E028",
    "E029",
    "E031",  # E030 is the deploy-only Redis check
    "E032",
    "E033",
    "E034",
    *(f"E{i:03d}" for i in range(38, 42)),
    "E043",  # METRICS_ALLOWED_IPS
]


def test_every_rule_has_bad_values() -> None:
    assert {name for name, _ in BAD_VALUES} == set(CODES)


def test_every_setting_has_a_rule() -> None:
    assert [PREFIX + name for name, _code, _valid, _expected in RULES] == PageViewSettings.names()


def test_rule_ids_are_distinct_and_numbered() -> None:
    codes = [code for _name, code, _valid, _expected in RULES]
    assert codes == RULE_IDS
    assert len(set(codes)) == len(codes)
    assert "E013" not in codes
    assert "E020" not in codes


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_bad_values_are_not_defaults(name: str, value: Any) -> None:
    default = PageViewSettings.default(name)
    assert (type(value), value) != (type(default), default)


def test_defaults_pass() -> None:
    assert check_settings() == []
    assert check_async_dependencies() == []


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_bad_value_is_exactly_one_error(name: str, value: Any) -> None:
    with override_settings(**{f"PAGEVIEW_{name}": value}):
        errors = check_settings()
    assert len(errors) == 1
    error = errors[0]
    assert type(error) is Error
    assert error.id == f"django_pageviews.{CODES[name]}"
    assert f"PAGEVIEW_{name}" in error.msg
    assert repr(value) in error.msg


@pytest.mark.parametrize(("name", "value"), GOOD_VALUES)
def test_valid_non_default_passes(name: str, value: Any) -> None:
    with override_settings(**{f"PAGEVIEW_{name}": value}):
        assert check_settings() == []


def test_several_bad_settings_give_one_error_each() -> None:
    with override_settings(PAGEVIEW_BATCH_SIZE=0, PAGEVIEW_STORE_IP=1, PAGEVIEW_EXCLUDE_PATHS=[1]):
        ids = [e.id for e in check_settings()]
    assert ids == ["django_pageviews.E002", "django_pageviews.E008", "django_pageviews.E011"]


def test_several_bad_redis_settings_give_one_error_each() -> None:
    with override_settings(
        PAGEVIEW_REDIS_FALLBACK="queue",
        PAGEVIEW_SHIP_BATCH_SIZE=5001,
        PAGEVIEW_REDIS_URL="amqp://rabbit//",
        PAGEVIEW_PROCESSED_BATCH_RETENTION_DAYS=0,
    ):
        ids = [e.id for e in check_settings()]
    assert ids == [
        "django_pageviews.E014",
        "django_pageviews.E019",
        "django_pageviews.E022",
        "django_pageviews.E026",
    ]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "REDIS_URL",
            "amqp://rabbit//",
            "PAGEVIEW_REDIS_URL must be None or a redis://, rediss:// or unix:// URL, "
            "not 'amqp://rabbit//'.",
        ),
        (
            "KEY_PREFIX",
            "{pv}",
            "PAGEVIEW_KEY_PREFIX must be a non-empty string without '{', '}' or spaces, "
            "not '{pv}'.",
        ),
        ("SHIP_BATCH_SIZE", 5001, "PAGEVIEW_SHIP_BATCH_SIZE must be an integer 1-5000, not 5001."),
        (
            "REDIS_FALLBACK",
            "queue",
            "PAGEVIEW_REDIS_FALLBACK must be 'spill' or 'drop', not 'queue'.",
        ),
        (
            "EARLY_FLUSH_THRESHOLD",
            -1,
            "PAGEVIEW_EARLY_FLUSH_THRESHOLD must be an integer >= 0 (0 disables), not -1.",
        ),
    ],
)
def test_redis_setting_errors_say_what_is_expected(name: str, value: Any, message: str) -> None:
    with override_settings(**{f"PAGEVIEW_{name}": value}):
        errors = check_settings()
    assert [e.msg for e in errors] == [message]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (None, "PAGEVIEW_REDIS_URL is not set (the Celery broker cannot be a Redis Cluster)"),
        ("unix:///run/redis.sock", "is not a redis:// or rediss:// URL"),
        ("redis://node-1:6379/3", "names database 3 (a cluster has only 0)"),
        ("redis://node-1:6379?db=2", "names database 2 (a cluster has only 0)"),
    ],
)
def test_a_cluster_url_that_cannot_name_a_cluster_is_e044(url: str | None, problem: str) -> None:
    with override_settings(
        PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_CLUSTER=True, PAGEVIEW_REDIS_URL=url
    ):
        errors = check_settings()
    assert [e.id for e in errors] == ["django_pageviews.E045"]
    assert errors[0].msg.startswith("PAGEVIEW_REDIS_CLUSTER is True but ")
    assert problem in errors[0].msg


@pytest.mark.parametrize(
    "url", ["redis://node-1:6379/0", "redis://node-1:6379", "rediss://:pw@node-1:6380/?db=0"]
)
def test_a_cluster_url_of_database_0_passes(url: str) -> None:
    with override_settings(
        PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_CLUSTER=True, PAGEVIEW_REDIS_URL=url
    ):
        assert check_settings() == []


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"PAGEVIEW_REDIS_CLUSTER": True}, "PAGEVIEW_REDIS_CLUSTER is True too"),
        ({"PAGEVIEW_REDIS_URL": None}, "PAGEVIEW_REDIS_URL is not set"),
        ({"PAGEVIEW_REDIS_URL": "unix:///run/redis.sock"}, "does not name a service"),
    ],
)
def test_sentinels_without_a_service_to_ask_for_are_e046(
    settings: dict[str, Any], problem: str
) -> None:
    with override_settings(
        **{
            "PAGEVIEW_ASYNC_PROCESSING": True,
            "PAGEVIEW_REDIS_SENTINELS": [("sentinel-1", 26379)],
            "PAGEVIEW_REDIS_URL": "redis://mymaster/0",
            **settings,
        }
    ):
        errors = check_settings()
    assert [e.id for e in errors] == ["django_pageviews.E047"]
    assert problem in errors[0].msg


def test_sentinels_with_a_service_pass() -> None:
    with override_settings(
        PAGEVIEW_ASYNC_PROCESSING=True,
        PAGEVIEW_REDIS_SENTINELS=[("sentinel-1", 26379)],
        PAGEVIEW_REDIS_URL="rediss://:secret@mymaster/2",
    ):
        assert check_settings() == []


@pytest.mark.parametrize(
    ("settings", "shown"),
    [
        (  # E045
            {"PAGEVIEW_REDIS_CLUSTER": True, "PAGEVIEW_REDIS_URL": "redis://:s3cret@node-1/4"},
            "redis://:***@node-1/4",
        ),
        (  # E047: a password and no service name
            {
                "PAGEVIEW_REDIS_SENTINELS": [("sentinel-1", 26379)],
                "PAGEVIEW_REDIS_URL": "rediss://app:s3cret@:6379/2",
            },
            "rediss://app:***@:6379/2",
        ),
    ],
)
def test_check_messages_never_show_the_redis_password(settings: dict[str, Any], shown: str) -> None:
    # Check output goes to CI logs and deploy output: more readers than the settings.
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=True, **settings):
        errors = check_settings()
    assert len(errors) == 1
    assert "s3cret" not in errors[0].msg
    assert shown in errors[0].msg


def test_the_deploy_check_never_shows_the_redis_password() -> None:
    url = "redis://:s3cret@127.0.0.1:1/0"  # nothing listens on port 1
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_URL=url):
        errors = check_redis_reachable()
    assert [e.id for e in errors] == ["django_pageviews.E030"]
    assert "s3cret" not in errors[0].msg
    assert "redis://:***@127.0.0.1:1/0" in errors[0].msg


def test_max_buffer_smaller_than_batch_is_e013() -> None:
    with override_settings(PAGEVIEW_BATCH_SIZE=200, PAGEVIEW_MAX_BUFFER_SIZE=100):
        errors = check_settings()
    assert len(errors) == 1
    assert type(errors[0]) is Error
    assert errors[0].id == "django_pageviews.E013"
    assert "PAGEVIEW_MAX_BUFFER_SIZE" in errors[0].msg
    assert "PAGEVIEW_BATCH_SIZE" in errors[0].msg


def test_max_buffer_equal_to_batch_passes() -> None:
    with override_settings(PAGEVIEW_BATCH_SIZE=100, PAGEVIEW_MAX_BUFFER_SIZE=100):
        assert check_settings() == []


def test_max_buffer_smaller_than_default_batch_is_e013() -> None:
    with override_settings(PAGEVIEW_MAX_BUFFER_SIZE=99):
        assert [e.id for e in check_settings()] == ["django_pageviews.E013"]


def test_checks_are_registered() -> None:
    with (
        override_settings(PAGEVIEW_BATCH_SIZE=0),
        pytest.raises(SystemCheckError, match=r"django_pageviews\.E002"),
    ):
        call_command("check")


def test_check_command_passes_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("check")
    assert "django_pageviews" not in capsys.readouterr().err


def test_async_dependencies_ignored_when_async_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=False):
        assert check_async_dependencies() == []


@override_settings(PAGEVIEW_ASYNC_PROCESSING=True)
def test_async_dependencies_installed() -> None:
    assert check_async_dependencies() == []


def only_e020() -> CheckMessage:
    """The single error async mode gives when its libraries cannot be imported."""
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=True):
        errors = check_async_dependencies()
    assert len(errors) == 1
    error = errors[0]
    assert type(error) is Error
    assert error.id == "django_pageviews.E020"
    assert error.hint == "pip install django-pageviews[async]"
    return error


@pytest.mark.parametrize("module", ["celery", "kombu.transport.redis"])
def test_async_dependency_missing_is_e020(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    error = only_e020()
    assert error.msg == f"PAGEVIEW_ASYNC_PROCESSING is True but {module} cannot be imported."


def test_redis_missing_is_e020_in_a_fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a fresh `manage.py check` where the redis package is not installed: kombu's
    # redis transport has not been imported yet, and `import redis` fails.
    monkeypatch.delitem(sys.modules, "kombu.transport.redis", raising=False)
    monkeypatch.setitem(sys.modules, "redis", None)
    assert "redis" in only_e020().msg


def test_all_async_dependencies_missing_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ASYNC_MODULES:
        monkeypatch.setitem(sys.modules, module, None)
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=True):
        errors = check_async_dependencies()
    assert len(errors) == 1
    assert errors[0].id == "django_pageviews.E020"
    assert errors[0].msg == (
        "PAGEVIEW_ASYNC_PROCESSING is True but celery, redis, kombu.transport.redis "
        "cannot be imported."
    )


def test_async_missing_dependency_fails_check_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)
    with (
        override_settings(PAGEVIEW_ASYNC_PROCESSING=True),
        pytest.raises(SystemCheckError, match=r"django_pageviews\.E020"),
    ):
        call_command("check")


@pytest.mark.parametrize("value", ["yes", 1])
def test_truthy_non_bool_async_is_not_async(value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A wrong type is E004 from check_settings, not a second error about dependencies.
    monkeypatch.setitem(sys.modules, "celery", None)
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=value):
        assert check_async_dependencies() == []
        assert [e.id for e in check_settings()] == ["django_pageviews.E004"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--maxmemory-policy", "allkeys-lru"], ["django_pageviews.W001"]),
        (["--maxmemory-policy", "volatile-ttl"], ["django_pageviews.W001"]),
        (["--maxmemory-policy", "noeviction"], []),
        (["--rename-command", "CONFIG", ""], ["django_pageviews.I001"]),  # managed Redis
    ],
)
def test_deploy_check_warns_about_a_redis_that_evicts(args: list[str], expected: list[str]) -> None:
    server = PrivateRedis(extra_args=args)
    server.start()
    try:
        with override_settings(PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_URL=server.url):
            assert [m.id for m in check_redis_reachable()] == expected
            if expected == ["django_pageviews.W001"]:
                with pytest.raises(SystemCheckError, match=r"django_pageviews\.W001"):
                    call_command("check", "--deploy", "--fail-level", "WARNING")
    finally:
        server.close()


CACHE_MIDDLEWARE = [
    "django.middleware.cache.UpdateCacheMiddleware",
    "django_pageviews.middleware.PageViewMiddleware",
    "django.middleware.cache.FetchFromCacheMiddleware",
]


@pytest.mark.parametrize(
    ("cached", "max_age", "middleware", "expected"),
    [
        (86_401, 86_400, CACHE_MIDDLEWARE, ["django_pageviews.W002"]),
        (86_400, 86_400, CACHE_MIDDLEWARE, []),
        (86_401, 86_400, CACHE_MIDDLEWARE[1:2], []),  # no page cache in Django
        (86_401, "a day", CACHE_MIDDLEWARE, []),  # E041 says what is wrong
        (60, 86_400, [CACHE_MIDDLEWARE[i] for i in (1, 0, 2)], []),  # above UpdateCache
        (60, 86_400, [CACHE_MIDDLEWARE[i] for i in (0, 2, 1)], ["django_pageviews.W004"]),
        (
            86_401,
            86_400,
            [CACHE_MIDDLEWARE[i] for i in (0, 2, 1)],
            ["django_pageviews.W004", "django_pageviews.W002"],
        ),
    ],
)
def test_beacons_under_the_page_cache_are_w002(
    cached: int, max_age: Any, middleware: list[str], expected: list[str]
) -> None:
    with override_settings(
        CACHE_MIDDLEWARE_SECONDS=cached, PAGEVIEW_BEACON_MAX_AGE=max_age, MIDDLEWARE=middleware
    ):
        found = check_middleware_order()
        assert [w.id for w in found] == expected
        if "django_pageviews.W002" in expected:
            assert "PAGEVIEW_BEACON_MAX_AGE (86400 s) is shorter than" in found[-1].msg
        if expected:
            with pytest.raises(SystemCheckError, match=expected[-1].replace(".", r"\.")):
                call_command("check", "--fail-level", "WARNING")
