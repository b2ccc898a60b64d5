#!/usr/bin/env bash
# Serve the demo blog at http://127.0.0.1:${PORT:-8000}/ (SQLite and the in-process buffer
# unless DATABASE_URL / REDIS_URL say otherwise). Ctrl-C stops it and flushes the buffer.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh" async,demo
python manage.py migrate --noinput
python manage.py seed_demo
echo "Demo blog: http://127.0.0.1:${PORT:-8000}/"
exec uvicorn example_asgi.asgi:application --loop uvloop --lifespan on \
    --host 127.0.0.1 --port "${PORT:-8000}"
