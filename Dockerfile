# One image for every process: web (gunicorn), asgi (uvicorn), worker and beat (Celery), migrate (a Job).
# The role is the first argument: docker run brokerage web|asgi|worker|beat|migrate (deploy/entrypoint.sh).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
RUN python -m venv /venv && /venv/bin/pip install --upgrade pip && /venv/bin/pip install .
COPY . .

FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=brokerage.settings PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    MEDIA_ROOT=/data/media PORT=8000
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --home-dir /app app \
    && mkdir -p /data/media && chown app:app /data/media
COPY --from=build /venv /venv
WORKDIR /app
COPY --chown=app:app . .
# Static files are collected at build time (whitenoise serves them); a throwaway key only for this step.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0
USER 10001:10001
EXPOSE 8000 9808
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s CMD ["python", "-c", "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8000\")}/healthz', timeout=2)"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
