"""System checks: a wrong setting is a loud, named error at start-up, never a silent default."""

from __future__ import annotations

import importlib
import ipaddress
import math
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Warning
from django.db import connections, router

from .client_ip import CLIENT_IP_HEADERS
from .conf import PREFIX, conf
from .middleware import MIDDLEWARE_PATH
from .models import PageView
from .routers import ROUTER_PATH


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_positive_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return 0 < value < math.inf


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def _is_ip_list(value: Any) -> bool:
    if not _is_str_list(value):
        return False
    try:
        for v in value:
            ipaddress.ip_network(v, strict=False)
    except ValueError:
        return False
    return True


def _is_redis_url(value: Any) -> bool:
    return value is None or (
        isinstance(value, str) and value.startswith(("redis://", "rediss://", "unix://"))
    )


def _is_address_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(a, list | tuple)
        and len(a) == 2
        and isinstance(a[0], str)
        and bool(a[0])
        and _is_int(a[1], 1)
        and a[1] <= 65535
        for a in value
    )


def _is_alias(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value in settings.DATABASES)


def _is_key_prefix(value: Any) -> bool:
    return (
        isinstance(value, str) and bool(value) and not any(c in "{}" or c.isspace() for c in value)
    )


def _is_counter_list(value: Any) -> bool:
    """Path patterns and installed models' labels: a typo would otherwise keep a counter
    private (404) with nothing to say why."""
    if not _is_str_list(value):
        return False
    for entry in value:
        if entry.startswith("/"):
            continue
        try:
            apps.get_model(entry)
        except (LookupError, ValueError):
            return False
    return True


# One claim moves a batch inside one Redis script (Redis serves nobody else meanwhile)
# and one transaction writes it: beyond this, batches only make both longer.
MAX_BATCH_SIZE = 50_000
# Records one drain transaction writes at most: beyond this, a transaction only holds its
# locks (and the claims it acknowledges) longer.
MAX_TRANSACTION_SIZE = 1_000_000

# Shards of the Redis buffer at most: every live read takes a snapshot of each, and a
# drain visits each. More shards than a cluster has primaries (many times over) buy nothing.
MAX_BUFFER_SHARDS = 1024

# A beacon token counts its page for at most this long (a copy of the page as old as that
# is stale anyway); a leaked token counts no longer.
MAX_BEACON_AGE = 7 * 86_400

# (setting name without prefix, check id, validator, what a valid value is)
RULES: Sequence[tuple[str, str, Callable[[Any], bool], str]] = (
    ("THROTTLE_SECONDS", "E001", lambda v: _is_int(v, 0), "an integer >= 0 (0 disables)"),
    (
        "BATCH_SIZE",
        "E002",
        lambda v: _is_int(v, 1) and v <= MAX_BATCH_SIZE,
        f"an integer 1-{MAX_BATCH_SIZE}",
    ),
    ("BUFFER_TIMEOUT", "E003", _is_positive_number, "a number of seconds > 0"),
    ("ASYNC_PROCESSING", "E004", _is_bool, "True or False"),
    ("BOT_PATTERNS", "E005", _is_str_list, "a list of strings"),
    ("EXCLUDE_ADMIN", "E006", _is_bool, "True or False"),
    ("EXCLUDE_AJAX", "E007", _is_bool, "True or False"),
    ("EXCLUDE_PATHS", "E008", _is_str_list, "a list of path prefixes (strings)"),
    (
        "EXCLUDE_IP_ADDRESSES",
        "E009",
        _is_ip_list,
        "a list of IP addresses or networks such as '10.0.0.0/8'",
    ),
    ("STORE_RAW", "E010", _is_bool, "True or False"),
    ("STORE_IP", "E011", _is_bool, "True or False"),
    ("MAX_BUFFER_SIZE", "E012", lambda v: _is_int(v, 1), "an integer >= 1"),
    ("MAX_BUFFER_AGE", "E036", _is_positive_number, "a number of seconds > 0"),
    ("REDIS_URL", "E014", _is_redis_url, "None or a redis://, rediss:// or unix:// URL"),
    ("REDIS_CLUSTER", "E044", _is_bool, "True or False"),
    ("REDIS_SENTINELS", "E046", _is_address_list, "a list of (host, port) pairs"),
    ("REDIS_SOCKET_TIMEOUT", "E015", _is_positive_number, "a number of seconds > 0"),
    ("REDIS_CONNECT_TIMEOUT", "E016", _is_positive_number, "a number of seconds > 0"),
    ("KEY_PREFIX", "E017", _is_key_prefix, "a non-empty string without '{', '}' or spaces"),
    (
        "BUFFER_SHARDS",
        "E054",
        lambda v: _is_int(v, 1) and v <= MAX_BUFFER_SHARDS,
        f"an integer 1-{MAX_BUFFER_SHARDS} (1: one buffer, as before shards existed)",
    ),
    ("SHIP_INTERVAL", "E018", _is_positive_number, "a number of seconds > 0"),
    ("SHIP_BATCH_SIZE", "E019", lambda v: _is_int(v, 1) and v <= 5000, "an integer 1-5000"),
    ("LOCAL_QUEUE_SIZE", "E021", lambda v: _is_int(v, 1), "an integer >= 1"),
    ("REDIS_FALLBACK", "E022", lambda v: v in ("spill", "drop"), "'spill' or 'drop'"),
    ("FLUSH_TIME_BUDGET", "E023", _is_positive_number, "a number of seconds > 0"),
    (
        "DRAIN_TRANSACTION_SIZE",
        "E037",
        lambda v: _is_int(v, 0) and v <= MAX_TRANSACTION_SIZE,
        f"an integer 0-{MAX_TRANSACTION_SIZE} (0: one claim per transaction)",
    ),
    ("EARLY_FLUSH_THRESHOLD", "E024", lambda v: _is_int(v, 0), "an integer >= 0 (0 disables)"),
    ("EARLY_FLUSH_INTERVAL", "E025", _is_positive_number, "a number of seconds > 0"),
    ("PROCESSED_BATCH_RETENTION_DAYS", "E026", lambda v: _is_int(v, 1), "an integer >= 1"),
    ("DATABASE", "E048", _is_alias, "None or an alias of the DATABASES setting"),
    ("RAW_RETENTION_DAYS", "E052", lambda v: v is None or _is_int(v, 1), "None or an integer >= 1"),
    ("RAW_PARTITIONS", "E053", _is_bool, "True or False"),
    ("RESPECT_DNT", "E027", _is_bool, "True or False"),
    ("COUNT_VISITORS", "E042", _is_bool, "True or False"),
    ("ANONYMIZE_IP", "E035", lambda v: v in ("truncate", "omit"), "'truncate' or 'omit'"),
    (
        "TRUSTED_PROXIES",
        "E028",
        _is_ip_list,
        "a list of proxy addresses or networks such as '10.0.0.0/8'",
    ),
    ("PROXY_COUNT", "E029", lambda v: _is_int(v, 0), "an integer >= 0"),
    (
        "CLIENT_IP_HEADER",
        "E031",
        lambda v: v in CLIENT_IP_HEADERS,
        "one of " + ", ".join(repr(h) for h in CLIENT_IP_HEADERS),
    ),
    ("TRACK_QUERY_STRING", "E032", _is_str_list, "a list of query parameter names"),
    ("MAX_NEW_URLS_PER_DAY", "E033", lambda v: _is_int(v, 0), "an integer >= 0 (0: no cap)"),
    (
        "TRAILING_SLASH",
        "E034",
        lambda v: v in (None, "append", "strip", "keep"),
        "None, 'append', 'strip' or 'keep'",
    ),
    (
        "PUBLIC_COUNTERS",
        "E038",
        _is_counter_list,
        "a list of URL path patterns starting with '/' ('/blog/*') and labels of installed "
        "models ('blog.article')",
    ),
    ("COUNTER_MAX_AGE", "E039", lambda v: _is_int(v, 0), "an integer number of seconds >= 0"),
    ("API_MAX_AGE", "E040", lambda v: _is_int(v, 0), "an integer number of seconds >= 0"),
    (
        "BEACON_MAX_AGE",
        "E041",
        lambda v: _is_int(v, 1) and v <= MAX_BEACON_AGE,
        f"an integer number of seconds 1-{MAX_BEACON_AGE}",
    ),
    (
        "METRICS_ALLOWED_IPS",
        "E043",
        _is_ip_list,
        "a list of IP addresses or networks such as '10.0.0.0/8'",
    ),
)

ASYNC_MODULES = ("celery", "redis", "kombu.transport.redis")


def check_settings(**kwargs: object) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name, code, valid, expected in RULES:
        value = getattr(conf, name)
        if not valid(value):
            errors.append(
                Error(
                    f"{PREFIX}{name} must be {expected}, not {value!r}.",
                    id=f"django_pageviews.{code}",
                )
            )
    batch, maximum = conf.BATCH_SIZE, conf.MAX_BUFFER_SIZE
    if _is_int(batch, 1) and _is_int(maximum, 1) and maximum < batch:
        errors.append(
            Error(
                f"{PREFIX}MAX_BUFFER_SIZE ({maximum}) must not be smaller "
                f"than {PREFIX}BATCH_SIZE ({batch}).",
                id="django_pageviews.E013",
            )
        )
    if (
        conf.ASYNC_PROCESSING is True
        and conf.REDIS_CLUSTER is True
        and _is_redis_url(conf.REDIS_URL)
    ):
        problem = cluster_url_problem(conf.REDIS_URL)
        if problem:
            errors.append(
                Error(
                    f"{PREFIX}REDIS_CLUSTER is True but {problem}.",
                    hint="Set PAGEVIEW_REDIS_URL to redis://<host>:<port>/0 (or rediss://) "
                    "of any node of the cluster.",
                    id="django_pageviews.E045",
                )
            )
    if conf.ASYNC_PROCESSING is True and _is_address_list(conf.REDIS_SENTINELS):
        problem = sentinel_problem(conf.REDIS_SENTINELS, conf.REDIS_URL, conf.REDIS_CLUSTER)
        if problem:
            errors.append(
                Error(
                    f"{PREFIX}REDIS_SENTINELS is set but {problem}.",
                    hint="Set PAGEVIEW_REDIS_URL to redis://<service name>/<db> (the name "
                    "the Sentinels monitor, as django-redis takes it).",
                    id="django_pageviews.E047",
                )
            )
    return errors


def sentinel_problem(sentinels: Any, url: str | None, cluster: Any) -> str:
    """Why Sentinels cannot be used with ``url`` ("" if they can, or none are set)."""
    if not sentinels:
        return ""
    if cluster is True:
        return f"{PREFIX}REDIS_CLUSTER is True too (a cluster fails over by itself)"
    if url is None:
        return f"{PREFIX}REDIS_URL is not set (its host names the service)"
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        return f"{PREFIX}REDIS_URL {shown_url(url)!r} does not name a service as its host"
    return ""


def shown_url(url: str) -> str:
    """``url`` as a check message may show it: without its password. Check messages go to
    CI logs and deploy output, which are read by more people than the settings."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def cluster_url_problem(url: str | None) -> str:
    """Why ``url`` cannot name a node of a Redis Cluster ("" if it can). It must be set:
    the fallback, CELERY_BROKER_URL, names a broker, and kombu's Redis transport does not
    speak to a cluster. A cluster has database 0 only, and its nodes talk TCP."""
    if url is None:
        return f"{PREFIX}REDIS_URL is not set (the Celery broker cannot be a Redis Cluster)"
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return f"{PREFIX}REDIS_URL {shown_url(url)!r} is not a redis:// or rediss:// URL"
    db = parts.path.strip("/") or dict(parse_qsl(parts.query)).get("db", "0")
    if db != "0":
        return f"{PREFIX}REDIS_URL {shown_url(url)!r} names database {db} (a cluster has only 0)"
    return ""


def check_async_dependencies(**kwargs: object) -> list[CheckMessage]:
    """Async mode without its libraries is an error, never a quiet switch to another path."""
    if conf.ASYNC_PROCESSING is not True:
        return []
    missing = []
    for module in ASYNC_MODULES:
        try:
            importlib.import_module(module)
        except Exception:  # kombu's transport raises AttributeError when redis is missing
            missing.append(module)
    if not missing:
        return []
    return [
        Error(
            f"{PREFIX}ASYNC_PROCESSING is True but {', '.join(missing)} cannot be imported.",
            hint="pip install django-pageviews[async]",
            id="django_pageviews.E020",
        )
    ]


def check_redis_reachable(**kwargs: object) -> list[CheckMessage]:
    """Under ``check --deploy`` only (it opens a connection): async mode needs Redis, one
    that does not evict keys."""
    if conf.ASYNC_PROCESSING is not True or check_async_dependencies():
        return []
    from .conf import redis_url
    from .redis.client import make_client

    client = None
    try:
        client = make_client()  # a cluster client connects here already
        client.ping()
    except Exception as exc:
        return [
            Error(
                f"{PREFIX}ASYNC_PROCESSING is True but Redis at {shown_url(redis_url())} is not "
                f"reachable: {exc}",
                hint="Start Redis or set PAGEVIEW_REDIS_URL.",
                id="django_pageviews.E030",
            )
        ]
    else:
        return check_eviction_policy(client)
    finally:
        if client is not None:
            client.close()


def check_eviction_policy(client: Any) -> list[CheckMessage]:
    """The buffer holds views that are in no database yet: a Redis that evicts keys may
    drop pending views, a claimed batch or a shipment's sent marker (a retry then counts
    twice)."""
    from .conf import redis_url
    from .redis.client import eviction_policies

    try:
        policies = eviction_policies(client)
    except Exception as exc:  # CONFIG renamed or refused, as on many managed services
        return [
            Info(
                f"Could not read maxmemory-policy of Redis at {shown_url(redis_url())} "
                f"({exc}); the page-view buffer needs noeviction.",
                id="django_pageviews.I001",
            )
        ]
    evicting = sorted({p for p in policies if p not in (None, "noeviction")})
    if not evicting:
        return []
    policy = ", ".join(evicting)
    return [
        Warning(
            f"Redis at {shown_url(redis_url())} evicts keys under memory pressure "
            f"(maxmemory-policy {policy}): buffered page views could be lost or counted twice.",
            hint="Set maxmemory-policy noeviction on the Redis that buffers page views "
            "(PAGEVIEW_REDIS_URL), or give it a Redis of its own.",
            id="django_pageviews.W001",
        )
    ]


def check_middleware_order(**kwargs: object) -> list[CheckMessage]:
    """Where the page-view middleware meets Django's page cache. A cache middleware listed
    above ours answers cached pages before ours runs: those views are never counted (W004).
    Pages with ``{% pageview_beacon %}`` are counted by their beacon, whose token must live
    as long as a cached copy (W002). Above or below AuthenticationMiddleware makes no
    difference (the user is read on the way out, once the view has loaded it), and neither
    does ours above UpdateCacheMiddleware (a cache hit is searched for the beacon)."""
    from django.middleware.cache import FetchFromCacheMiddleware
    from django.utils.module_loading import import_string

    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    if MIDDLEWARE_PATH not in middleware:
        return []
    found: list[CheckMessage] = []
    caches = []
    for position, path in enumerate(middleware):
        try:
            loaded = import_string(path)
        except ImportError:
            continue  # Django's own checks and start-up report it
        if isinstance(loaded, type) and issubclass(loaded, FetchFromCacheMiddleware):
            caches.append((position, path))
    answering = [path for position, path in caches if position < middleware.index(MIDDLEWARE_PATH)]
    if answering:
        found.append(
            Warning(
                f"{answering[0]} is listed above {MIDDLEWARE_PATH} in MIDDLEWARE: pages "
                "served from the cache never reach the page-view middleware and are not "
                "counted.",
                hint=f"List {MIDDLEWARE_PATH} above it, or count cached pages with the "
                "{% pageview_beacon %} tag.",
                id="django_pageviews.W004",
            )
        )
    max_age = conf.BEACON_MAX_AGE
    cached = getattr(settings, "CACHE_MIDDLEWARE_SECONDS", 600)
    if caches and _is_int(max_age, 1) and _is_int(cached, 0) and cached > max_age:
        found.append(
            Warning(
                f"{PREFIX}BEACON_MAX_AGE ({max_age} s) is shorter than "
                f"CACHE_MIDDLEWARE_SECONDS ({cached} s): beacons of cached pages older "
                f"than {max_age} s count nothing.",
                hint=f"Set {PREFIX}BEACON_MAX_AGE to at least CACHE_MIDDLEWARE_SECONDS.",
                id="django_pageviews.W002",
            )
        )
    return found


def check_database_router(**kwargs: object) -> list[CheckMessage]:
    """``PAGEVIEW_DATABASE`` takes effect through the router: without it (or with another
    router answering first) the tables would be read, written and migrated elsewhere."""
    alias = conf.DATABASE
    if alias is None or not _is_alias(alias):
        return []
    astray = sorted(
        model._meta.label
        for model in apps.get_app_config("django_pageviews").get_models()
        if router.db_for_write(model) != alias
        or router.db_for_read(model) != alias
        or not router.allow_migrate_model(alias, model)
    )
    found: list[CheckMessage] = []
    if astray:
        found.append(
            Error(
                f"{PREFIX}DATABASE is {alias!r} but the database routers send "
                f"{', '.join(astray)} elsewhere.",
                hint=f"Add {ROUTER_PATH!r} to DATABASE_ROUTERS, above any router that "
                "routes every model.",
                id="django_pageviews.E049",
            )
        )
    content_type = apps.get_model("contenttypes", "ContentType")
    if not router.allow_migrate_model(alias, content_type):
        found.append(
            Error(
                f"{PREFIX}DATABASE is {alias!r} but the database routers keep contenttypes "
                f"from migrating there: migration django_pageviews.0001 (0.2.x's, as it "
                "shipped) creates a foreign key to django_content_type in that database, "
                "which 0006 drops.",
                hint=f"Let the contenttypes app migrate on {alias!r} too (its table there "
                "stays unused).",
                id="django_pageviews.E050",
            )
        )
    return found


def check_raw_partitions(**kwargs: object) -> list[CheckMessage]:
    """Monthly partitions are PostgreSQL's declarative partitioning: elsewhere the setting
    would quietly do nothing."""
    if conf.RAW_PARTITIONS is not True:
        return []
    alias = router.db_for_write(PageView)
    vendor = connections[alias].vendor
    if vendor == "postgresql":
        return []
    return [
        Error(
            f"{PREFIX}RAW_PARTITIONS is True but the raw page views are on {vendor} "
            f"(database {alias!r}): monthly partitions need PostgreSQL.",
            hint=f"Set {PREFIX}RAW_PARTITIONS = False, and delete old raw views with "
            "clean_pageviews.",
            id="django_pageviews.E051",
        )
    ]
