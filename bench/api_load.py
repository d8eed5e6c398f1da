"""API latency and throughput under an open-loop load from a second process, against gunicorn (not runserver)
with a Celery worker matching the orders, on PostgreSQL and Redis.

Requests are sent on a fixed schedule (``--rate`` per second for ``--seconds``), each on its own thread from a
pool, and latency is measured from the *scheduled* send time, so a slow server cannot hide its queueing delay
(no coordinated omission).

Run: .venv/bin/python bench/api_load.py [--rate 200] [--seconds 20] [--web-workers 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from common import ROOT, django_setup, fresh_database, percentile, report

os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
PORT = 8765


def server_start(web_workers: int) -> list[subprocess.Popen]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOG_LEVEL="WARNING", ALLOWED_HOSTS="127.0.0.1")
    log = open("/tmp/bench-api.log", "w")
    gunicorn = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "brokerage.wsgi", "--bind", f"127.0.0.1:{PORT}",
         "--workers", str(web_workers), "--worker-class", "gthread", "--threads", "8", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    )
    worker = subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "brokerage", "worker", "--concurrency", "1", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/api/schema/")
            return [gunicorn, worker]
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start; see /tmp/bench-api.log")


def request(method: str, path: str, header: str, body: dict | None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    payload = json.dumps(body) if body is not None else None
    connection.request(method, path, body=payload,
                       headers={"Authorization": header, "Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def open_loop(make_request, rate: float, seconds: int) -> tuple[list[float], dict[int, int], float]:
    """Send ``rate`` requests/s for ``seconds``; returns latencies (ms, from scheduled time), status counts, s."""
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def one(i: int, scheduled: float) -> None:
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        status = make_request(i)
        elapsed = (time.perf_counter() - scheduled) * 1000
        with lock:
            latencies.append(elapsed)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter() + 0.5
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(total):
            pool.submit(one, i, started + i / rate)
    return latencies, statuses, time.perf_counter() - started


def figures(name: str, latencies, statuses, elapsed) -> dict:
    return {
        f"{name}: requests": f"{len(latencies):,} in {elapsed:.1f}s = {len(latencies) / elapsed:,.0f} req/s",
        f"{name}: status codes": ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items())),
        f"{name}: latency p50 / p99": f"{percentile(latencies, 50):.1f} ms / {percentile(latencies, 99):.1f} ms",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    django_setup()
    fresh_database()
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    from setup_desk import api_keys_create, desk_create, random_order

    _, account_ids = desk_create(accounts=args.accounts)
    headers = api_keys_create(account_ids=account_ids)
    processes = server_start(args.web_workers)
    rng = random.Random(7)
    try:
        request("GET", "/api/v1/balances/", headers[0], None)  # warm up every worker's imports
        def place(i: int) -> int:
            order = {k: str(v) for k, v in random_order(rng).items()}
            return request("POST", "/api/v1/orders/", headers[i % len(headers)],
                           {"market": "BTC-USD", "client_order_id": f"bench-{i}", **order})

        def balances(i: int) -> int:
            return request("GET", "/api/v1/balances/", headers[i % len(headers)], None)

        results = {}
        results.update(figures("POST /orders", *open_loop(place, args.rate, args.seconds)))
        results.update(figures("GET /balances", *open_loop(balances, args.rate, args.seconds)))
        report(f"API under open-loop load: {args.rate:.0f} req/s, gunicorn {args.web_workers} workers x 8 threads, "
               "1 Celery worker matching", results)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(30)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
