#!/usr/bin/env bash
# Run the whole test suite: on SQLite, then on every database URL in TEST_DATABASE_URLS
# (space separated, e.g. "postgres://postgres@127.0.0.1:5432/test mysql://root@127.0.0.1:3306/test").
# Extra arguments go to pytest. pytest exits non-zero when it collects no test.
# Redis: private redis-server processes, unless TEST_REDIS_URL names a server the suite may
# empty (databases 1-15 of it); see the README's "Running the tests".
# Browser tests (-m browser): Debian's chromium, installed here when missing and apt-get may
# run; they run in the SQLite pass only (they serve the demo on its own SQLite file whatever
# the database: a second pass would test the same thing again). So do the Redis Cluster
# tests (-m cluster): what they add is on the Redis side, the same whatever the database,
# and each pass would start a six-node cluster per worker again. So do the deployment
# units' tests (-m deploy, tests/test_deploy_files.py), which run the units on a SQLite
# file of their own.
extras="async,test,docs,deploy"
case " ${TEST_DATABASE_URLS:-} " in *postgres*) extras="$extras,postgres" ;; esac
case " ${TEST_DATABASE_URLS:-} " in *mysql*) extras="$extras,mysql" ;; esac

# mysqlclient (the MySQL/MariaDB driver Django supports) builds from source: it needs a C
# compiler, pkg-config and the client library's headers. Said here, before any test runs,
# rather than as a pip build error halfway through the set-up.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mysql_headers() {
    command -v cc >/dev/null && command -v pkg-config >/dev/null || return 1
    for name in mysqlclient mariadb libmariadb; do
        pkg-config --exists "$name" && return 0
    done
    return 1
}
case ",$extras," in *,mysql,*)
    if ! "$root/.venv/bin/python" -c "import MySQLdb" 2>/dev/null && ! mysql_headers; then
        echo "TEST_DATABASE_URLS names a MySQL/MariaDB database, but the mysqlclient driver" >&2
        echo "cannot be built here: it needs a C compiler, pkg-config and the client headers." >&2
        echo "Install them first, e.g. on Debian/Ubuntu:" >&2
        echo "    sudo apt-get install gcc pkg-config libmariadb-dev" >&2
        echo "(Fedora: gcc pkgconf mariadb-connector-c-devel; macOS: brew install pkg-config mysql-client)" >&2
        exit 1
    fi
    ;;
esac
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh" "$extras"

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "No /usr/bin/chromium and no apt-get as root: the browser tests will fail." >&2
        echo "Install it (apt-get install chromium chromium-driver) or pass -m 'not browser'." >&2
    fi
fi

ruff check .
ruff format --check .
mypy

status=0
for url in "sqlite" ${TEST_DATABASE_URLS:-}; do
    echo "=== tests on ${url%%:*} ==="
    if [ "$url" = sqlite ]; then
        env -u DATABASE_URL pytest -n auto "$@" || status=1
    else
        # A -m given in "$@" comes later and wins. Exit code 5 (no test collected): only
        # browser, cluster or deploy tests were selected, and they ran in the SQLite pass,
        # which fails on an empty selection itself.
        rc=0
        DATABASE_URL="$url" pytest -n auto -m "not browser and not cluster and not deploy" "$@" || rc=$?
        if [ "$rc" = 5 ]; then
            echo "(only browser, cluster or deploy tests selected: run in the SQLite pass)"
        elif [ "$rc" != 0 ]; then
            status=1
        fi
    fi
done
exit $status
