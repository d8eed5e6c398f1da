#!/bin/sh
# The container's roles (Dockerfile). Each one execs its server so signals reach it directly.
set -eu
# prometheus_client's multiprocess mode needs an empty directory at start (README "Operations").
rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
role="${1:-web}"
[ $# -gt 0 ] && shift
case "$role" in
  web)     exec gunicorn -c python:brokerage.gunicorn_conf brokerage.wsgi --bind "0.0.0.0:${PORT:-8000}" "$@" ;;
  asgi)    exec uvicorn brokerage.asgi:application --host 0.0.0.0 --port "${PORT:-8000}" --no-access-log "$@" ;;
  worker)  exec celery -A brokerage worker --loglevel=INFO --concurrency="${WORKER_CONCURRENCY:-2}" "$@" ;;
  beat)    exec celery -A brokerage beat --loglevel=INFO --schedule=/tmp/celerybeat-schedule "$@" ;;
  migrate) exec python manage.py migrate --noinput "$@" ;;
  *)       exec "$role" "$@" ;;
esac
