#!/usr/bin/env bash
# Serve the demo blog at http://127.0.0.1:${PORT:-8000}/ (SQLite and the in-process buffer
# unless DATABASE_URL / REDIS_URL say otherwise). Ctrl-C stops it and flushes the buffer.
# The mode is recorded in .demo/mode.env: later manage.py and celery commands use it.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh" async,demo
# Unset variables are recorded as '': this run's mode, not the previous run's.
python -m example_asgi.mode
python manage.py migrate --noinput --verbosity 0
python manage.py seed_demo --history
echo
python manage.py demo_info
echo
exec uvicorn example_asgi.asgi:application --loop uvloop --lifespan on \
    --host 127.0.0.1 --port "${PORT:-8000}"
