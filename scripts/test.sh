#!/usr/bin/env bash
# Run the whole test suite: on SQLite, then on every database URL in TEST_DATABASE_URLS
# (space separated, e.g. "postgres://postgres@127.0.0.1:5432/test mysql://root@127.0.0.1:3306/test").
# Extra arguments go to pytest. pytest exits non-zero when it collects no test.
# Redis: private redis-server processes, unless TEST_REDIS_URL names a server the suite may
# empty (databases 1-15 of it); see the README's "Running the tests".
extras="async,test"
case " ${TEST_DATABASE_URLS:-} " in *postgres*) extras="$extras,postgres" ;; esac
case " ${TEST_DATABASE_URLS:-} " in *mysql*) extras="$extras,mysql" ;; esac
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh" "$extras"

ruff check .
ruff format --check .
mypy

status=0
for url in "sqlite" ${TEST_DATABASE_URLS:-}; do
    echo "=== tests on ${url%%:*} ==="
    if [ "$url" = sqlite ]; then
        env -u DATABASE_URL pytest -n auto "$@" || status=1
    else
        DATABASE_URL="$url" pytest -n auto "$@" || status=1
    fi
done
exit $status
