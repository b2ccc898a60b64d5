#!/usr/bin/env bash
# Run the whole test suite: on SQLite, then on every database URL in TEST_DATABASE_URLS
# (space separated, e.g. "postgres://postgres@127.0.0.1:5432/test mysql://root@127.0.0.1:3306/test").
# Extra arguments go to pytest. pytest exits non-zero when it collects no test.
# Redis: private redis-server processes, unless TEST_REDIS_URL names a server the suite may
# empty (databases 1-15 of it); see the README's "Running the tests".
# Browser tests (-m browser): Debian's chromium, installed here when missing and apt-get may
# run; they run in the SQLite pass only (they serve the demo on its own SQLite file whatever
# the database: a second pass would test the same thing again).
extras="async,test"
case " ${TEST_DATABASE_URLS:-} " in *postgres*) extras="$extras,postgres" ;; esac
case " ${TEST_DATABASE_URLS:-} " in *mysql*) extras="$extras,mysql" ;; esac
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
        # browser tests were selected, and they ran in the SQLite pass, which fails on an
        # empty selection itself.
        rc=0
        DATABASE_URL="$url" pytest -n auto -m "not browser" "$@" || rc=$?
        if [ "$rc" = 5 ]; then
            echo "(only browser tests selected: run in the SQLite pass)"
        elif [ "$rc" != 0 ]; then
            status=1
        fi
    fi
done
exit $status
