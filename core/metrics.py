"""Prometheus metrics: the helpers every app's ``metrics.py`` uses, the scrape view and the Celery queue depth.

Two kinds of metric:

- **Counted where it happens** (requests, orders, matcher batches): ``prometheus_client`` counters and
  histograms, module-level in ``<app>/metrics.py``. An increment is a few microseconds and no query, so they sit
  on the hot paths. With several processes (gunicorn's workers, Celery's pool) every process writes its values
  to files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape adds them up (prometheus_client's multiprocess mode);
  ``./run`` sets and empties that directory at start. Without it (tests, ``manage.py``) they live in the
  process's default registry.
- **Read at scrape time** (matcher lag, reconciliation breaks, queue depth): a function registered with
  ``scrape_collector_register(name, fn)`` yields metric families when ``/metrics`` is scraped, from the database
  or the broker. One failing collector does not fail the scrape: ``brokerage_metrics_collector_up{collector}``
  says which one failed.

Hook for the events app (webhook/relay backlog and lag): register a collector named ``events`` from its
``AppConfig.ready`` with ``scrape_collector_register("events", fn)``, yielding e.g.
``brokerage_events_relay_backlog`` (undelivered events) and ``brokerage_events_relay_lag_seconds`` (age of the
oldest undelivered one); ``EVENTS_COLLECTOR`` names it, and the Grafana dashboard and alert rules in ``deploy/``
already refer to those two names.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "brokerage_"
EVENTS_COLLECTOR = "events"  # reserved for the events app's relay backlog/lag collector (see the module doc)
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Collect = Callable[[], Iterable[Metric]]
_scrape_collectors: dict[str, Collect] = {}


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def counter(name: str, documentation: str, labels: Iterable[str] = ()) -> Counter:
    return Counter(PREFIX + name, documentation, list(labels))


def histogram(name: str, documentation: str, labels: Iterable[str] = (), *,
              buckets: Iterable[float] = LATENCY_BUCKETS) -> Histogram:
    return Histogram(PREFIX + name, documentation, list(labels), buckets=tuple(buckets))


def gauge_family(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    """A gauge built at scrape time, for ``scrape_collector_register`` functions."""
    return GaugeMetricFamily(PREFIX + name, documentation, labels=list(labels))


def scrape_collector_register(name: str, collect: Collect) -> None:
    """Run ``collect`` at every scrape; registering a name again replaces the earlier function."""
    _scrape_collectors[name] = collect


class _ScrapeCollectors:
    def collect(self) -> Iterable[Metric]:
        up = gauge_family("metrics_collector_up", "1 if the scrape-time collector answered, 0 if it failed.",
                          ["collector"])
        for name, collect in sorted(_scrape_collectors.items()):
            try:
                families = list(collect())
            except Exception as exc:  # a broken collector is reported, never a failed scrape
                logger.warning("metrics collector %s failed: %s: %s", name, type(exc).__name__, str(exc)[:200])
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


def metrics_text() -> bytes:
    """Everything ``/metrics`` serves: every process's counted metrics plus the scrape-time collectors."""
    if multiprocess_enabled():
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_ScrapeCollectors())
    return generate_latest(counted) + generate_latest(scraped)


def metrics_view(request):
    """``GET /metrics``. With ``METRICS_TOKEN`` set, the scraper must send ``Authorization: Bearer <token>``;
    deploy/nginx.conf also keeps the path off the public listener."""
    token = settings.METRICS_TOKEN
    if token and request.headers.get("Authorization", "") != f"Bearer {token}":
        return HttpResponse("metrics need the scrape token\n", status=401, content_type="text/plain")
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def process_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: drop a dead worker's live gauges (its counters stay summed)."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid)


def worker_metrics_serve(port: int) -> None:
    """A Celery worker's own ``/metrics`` (its pool's processes summed), for deployments where the worker does
    not share ``PROMETHEUS_MULTIPROC_DIR`` with a web process (one pod per worker)."""
    from prometheus_client import start_http_server

    registry = REGISTRY
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    start_http_server(port, registry=registry)
    logger.info("worker metrics on :%s/metrics", port)


# --- Celery queue depth (scrape time) ---------------------------------------------------------------------

QUEUE_DEPTH_TIMEOUT_SECONDS = 2


def celery_queue_depth() -> Iterable[Metric]:
    """Messages waiting per Celery queue, on Redis or RabbitMQ alike: kombu's passive ``queue_declare``
    returns the count on both transports (a Redis list length, an AMQP queue's ready messages)."""
    from celery import current_app

    app = current_app
    family = gauge_family("celery_queue_depth", "Messages waiting in a Celery queue.", ["queue", "broker"])
    if app.conf.task_always_eager:
        return [family]  # the embedded default has no broker and no queue
    queues = [q.name for q in (app.conf.task_queues or [])] or [app.conf.task_default_queue]
    broker = urlsplit(app.conf.broker_url).scheme
    started = time.monotonic()
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=QUEUE_DEPTH_TIMEOUT_SECONDS)
        for name in queues:
            family.add_metric([name, broker], _queue_size(conn, name))
    logger.debug("queue depth read in %.3fs", time.monotonic() - started)
    return [family]


def _queue_size(conn, name: str) -> int:
    channel = conn.channel()
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except conn.channel_errors:  # AMQP: the queue is not declared yet (no worker ever started), so it is empty
        return 0
    finally:
        try:
            channel.close()
        except conn.connection_errors + conn.channel_errors:
            pass


def heartbeat_collect() -> Iterable[Metric]:
    from core.heartbeats import heartbeat_ages

    family = gauge_family("heartbeat_age_seconds", "Seconds since a background loop last proved it runs.", ["loop"])
    for name, age in sorted(heartbeat_ages().items()):
        family.add_metric([name], age)
    return [family]
