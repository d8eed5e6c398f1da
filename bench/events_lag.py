"""Lag of the event log's channels under load: from an event's write (its transaction commits right after) to its
receipt by a RabbitMQ consumer and by a webhook receiver, p50/p99, while orders arrive at a steady rate and a real
Celery worker matches them.

Runs: a fresh database (``brokerage_bench``, or DATABASE_URL), one matcher worker, the events relay as ./run starts
it (one process; ``--split``: one per channel) on the local RabbitMQ (a bench-only exchange and an exclusive queue), and a
webhook receiver (an HTTP server in this process on 127.0.0.1:18420) registered for WEBHOOK_ACCOUNTS accounts.

Run: .venv/bin/python bench/events_lag.py [--rate 200] [--seconds 20] [--accounts 200] [--webhook-accounts 20]
     [--processes 4] [--split]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import ROOT, django_setup, fresh_database, percentile, report

os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("EVENTS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
os.environ.setdefault("EVENTS_AMQP_EXCHANGE", "bench.events")
os.environ["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"] = "1"
WEBHOOK_PORT = int(os.environ.get("BENCH_WEBHOOK_PORT", "18420"))


def _parse(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Lags:
    def __init__(self):
        self.amqp, self.webhook, self.lock = [], [], threading.Lock()

    def add(self, channel: list, created_at: str) -> None:
        lag = (time.time() - _parse(created_at)) * 1000
        with self.lock:
            channel.append(lag)


def receiver_start(lags: Lags) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            import orjson

            body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body.get("created_at") and body.get("seq"):
                lags.add(lags.webhook, body["created_at"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", WEBHOOK_PORT), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def amqp_consumer_start(lags: Lags, stop: threading.Event) -> threading.Event:
    import orjson
    import pika

    ready = threading.Event()

    def run():
        connection = pika.BlockingConnection(pika.URLParameters(os.environ["EVENTS_AMQP_URL"]))
        channel = connection.channel()
        channel.exchange_declare(os.environ["EVENTS_AMQP_EXCHANGE"], exchange_type="topic", durable=True)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, os.environ["EVENTS_AMQP_EXCHANGE"], routing_key="#")
        ready.set()
        for method, _, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.2):
            if stop.is_set():
                break
            if method is not None:
                lags.add(lags.amqp, orjson.loads(body)["created_at"])
        connection.close()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return ready


def process_start(args: list[str], log: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--webhook-accounts", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--split", action="store_true", help="one relay process per channel")
    args = parser.parse_args()
    django_setup()
    fresh_database()
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    from matching import run_parallel
    from setup_desk import desk_create

    from accounts.models import ClientAccount
    from events import webhooks
    from events.models import Event

    market_id, account_ids = desk_create(accounts=args.accounts)
    lags, stop = Lags(), threading.Event()
    server = receiver_start(lags)
    for account in ClientAccount.objects.filter(pk__in=account_ids[: args.webhook_accounts]):
        webhooks.endpoint_create(account=account, url=f"http://127.0.0.1:{WEBHOOK_PORT}/hook", acting_user=None)
    amqp_consumer_start(lags, stop)
    worker = process_start([str(ROOT / ".venv/bin/celery"), "-A", "brokerage", "worker", "--concurrency", "1",
                            "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                           "/tmp/bench-events-worker.log")
    # As ./run starts it: one relay process; --split runs each channel in its own process.
    channels = ["sequence", "webhooks", "amqp"] if args.split else ["sequence,webhooks,amqp"]
    relays = [process_start([sys.executable, "manage.py", "events_relay", "--channels", c],
                            f"/tmp/bench-events-relay-{c.replace(',', '-')}.log") for c in channels]
    time.sleep(4)
    try:
        with lags.lock:
            lags.amqp.clear()
            lags.webhook.clear()
        started = time.time()
        accepted = run_parallel(market_id, account_ids, int(args.rate * args.seconds), args.processes,
                                rate=args.rate, seed=7)
        placing = time.time() - started
        time.sleep(3)  # let the tail arrive
    finally:
        stop.set()
        for process in (*relays, worker):
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        server.shutdown()
    written = Event.objects.count()
    from django.db import connection

    with connection.cursor() as cursor:  # write -> numbered, for the events of the measured period
        cursor.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d)"
            " FROM (SELECT extract(epoch FROM q.sequenced_at - e.created_at) * 1000 AS d FROM events_sequenced q"
            " JOIN events_event e ON e.id = q.event_id WHERE e.created_at >= to_timestamp(%s)) AS x", [started])
        numbered_p50, numbered_p99 = cursor.fetchone()
    report(f"event lag from write to receipt at {args.rate:.0f} orders/s offered", {
        "orders placed": f"{len(accepted):,} in {placing:.1f}s ({len(accepted) / placing:,.0f}/s)",
        "events written": f"{written:,}",
        "numbered (sequencer) p50 / p99": f"{numbered_p50:.0f} / {numbered_p99:.0f} ms",
        "RabbitMQ consumer p50 / p99": f"{percentile(lags.amqp, 50):.0f} / {percentile(lags.amqp, 99):.0f} ms "
                                       f"({len(lags.amqp):,} events)",
        "webhook receiver p50 / p99": f"{percentile(lags.webhook, 50):.0f} / {percentile(lags.webhook, 99):.0f} ms "
                                      f"({len(lags.webhook):,} events, {args.webhook_accounts} endpoints)",
    })


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
