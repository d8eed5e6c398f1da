"""API latency and throughput under an open-loop load from a second process, against gunicorn (not runserver)
with a Celery worker matching the orders, on PostgreSQL and Redis (the Celery broker, and the web's cache as in a
deployment).

Requests are sent on a fixed schedule (``--rate`` per second for ``--seconds``) from one asyncio loop over
keep-alive connections, and latency is measured from the *scheduled* send time, so a slow server cannot hide
its queueing delay (no coordinated omission). The generator reports its own CPU per request: it shares the
machine's two cores with the server, the worker and PostgreSQL.

Run: .venv/bin/python bench/api_load.py [--rate 200] [--seconds 20] [--web-workers 3] [--threads 4] [--no-matcher]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import time

from common import ROOT, django_setup, fresh_database, percentile, report
from setup_desk import api_keys_create, desk_create, random_order

os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
# The web's cache (rate-limit windows, failed-authentication counters) on that Redis too, shared by the web
# processes as a deployment has it (deploy/compose.yaml: REDIS_URL); without it each process would keep its own.
if os.environ["CELERY_BROKER_URL"].startswith(("redis://", "rediss://")):
    os.environ.setdefault("CACHE_URL", os.environ.get("REDIS_URL") or os.environ["CELERY_BROKER_URL"])
PORT = 8765
WARM_UP_SECONDS = 3


def server_options(parser: argparse.ArgumentParser) -> None:
    """The desk's and the servers' options, shared by the benches that run gunicorn and a matcher worker."""
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--server", choices=["gunicorn", "granian"], default="gunicorn",
                        help="the WSGI server: gunicorn (brokerage/gunicorn_conf.py), or granian (Rust HTTP server "
                             "with threads; not a dependency: .venv/bin/pip install granian)")
    parser.add_argument("--worker-nice", type=int, default=10,
                        help="CPU priority of the matcher worker (nice); ./run starts it at 10 as well")


def desk_prepare(accounts: int) -> list[str]:
    """A fresh database and broker, the BTC-USD desk with ``accounts`` funded clients: their API key headers."""
    fresh_database()
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    _, account_ids = desk_create(accounts=accounts)
    return api_keys_create(account_ids=account_ids)


def order_body(rng: random.Random, client_order_id: str) -> dict:
    """A ``POST /api/v1/orders/`` body from the bench's order mix (``setup_desk.random_order``)."""
    order = {k: str(v) for k, v in random_order(rng).items()}
    return {"market": "BTC-USD", "client_order_id": client_order_id, **order}


def serving() -> bool:
    try:
        http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/api/schema/")
        return True
    except OSError:
        return False


def web_command(server: str, web_workers: int, threads: int) -> list[str]:
    if server == "granian":
        return [str(ROOT / ".venv/bin/granian"), "--interface", "wsgi", "brokerage.wsgi:application",
                "--host", "127.0.0.1", "--port", str(PORT), "--workers", str(web_workers),
                "--blocking-threads", str(threads), "--log-level", "warning", "--no-ws"]
    return [str(ROOT / ".venv/bin/gunicorn"), "-c", "python:brokerage.gunicorn_conf", "brokerage.wsgi",
            "--bind", f"127.0.0.1:{PORT}", "--workers", str(web_workers), "--threads", str(threads),
            "--log-level", "warning"]


def server_start(web_workers: int, threads: int, matcher: bool, worker_nice: int,
                 server: str = "gunicorn", relay: bool = False) -> list[subprocess.Popen]:
    """The web server, then the matcher worker (``matcher``), then the events relay at nice 5 as ``./run`` starts it
    (``relay``): the processes in that order."""
    if serving():  # another bench's server: its figures would be taken for ours
        raise SystemExit(f"port {PORT} is already in use")
    # Production settings, but plain HTTP on loopback (no TLS proxy in front): no redirect to https.
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOG_LEVEL="WARNING", ALLOWED_HOSTS="127.0.0.1",
               SECURE_SSL_REDIRECT="0")
    log = open("/tmp/bench-api.log", "w")
    web = subprocess.Popen(web_command(server, web_workers, threads), cwd=ROOT, env=env, stdout=log, stderr=log)
    worker = subprocess.Popen(
        ["nice", "-n", str(worker_nice), str(ROOT / ".venv/bin/celery"), "-A", "brokerage", "worker", "--concurrency", "1", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    ) if matcher else None
    events_relay = subprocess.Popen(
        ["nice", "-n", "5", str(ROOT / ".venv/bin/python"), "manage.py", "events_relay"],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    ) if relay else None
    deadline = time.time() + 30
    while time.time() < deadline:
        if serving():
            return [process for process in (web, worker, events_relay) if process is not None]
        time.sleep(0.2)
    raise SystemExit(f"{server} did not start; see /tmp/bench-api.log")


def server_stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(30)


class LoadClient:
    """An open-loop HTTP/1.1 client on one asyncio loop: requests go out on schedule, each on an idle keep-alive
    connection or a new one, so a slow server gets more concurrent requests instead of fewer (no coordinated
    omission). One thread and no HTTP library keep its own CPU cost and timing jitter low."""

    def __init__(self) -> None:
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, header: str, body: dict | None,
                      extra_headers: dict[str, str] | None = None) -> int:
        status, _ = await self.send(self.message(method, path, header, body, extra_headers))
        return status

    @staticmethod
    def message(method: str, path: str, header: str, body: dict | None,
                extra_headers: dict[str, str] | None = None) -> bytes:
        """The request's bytes, e.g. to build a run's requests before it starts."""
        payload = json.dumps(body).encode() if body is not None else b""
        extra = "".join(f"{name}: {value}\r\n" for name, value in (extra_headers or {}).items())
        return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {header}\r\n{extra}"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload

    async def send(self, message: bytes) -> tuple[int, bytes]:
        """Send a request built by ``message``: its status and body."""
        while self.idle:  # the server closes keep-alive connections idle for a while: then take another
            reader, writer = self.idle.pop()
            try:
                writer.write(message)
                status_line = await reader.readline()
            except ConnectionError:
                status_line = b""
            if status_line:
                return await self._response(reader, writer, status_line)
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        writer.write(message)
        return await self._response(reader, writer, await reader.readline())

    async def _response(self, reader, writer, status_line: bytes) -> tuple[int, bytes]:
        headers = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = int(headers.split("content-length:", 1)[1].split("\r\n", 1)[0]) if "content-length:" in headers else 0
        body = await reader.readexactly(length)
        if "connection: close" in headers:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return int(status_line.split()[1]), body


def open_loop(make_request, rate: float, seconds: int) -> tuple[list[float], dict[int, int], float, float]:
    """Send ``rate`` requests/s for ``seconds`` with ``make_request(client, i)``. Returns latencies (ms, from
    the scheduled time), status counts, elapsed seconds and the load generator's own CPU ms per request."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    client = LoadClient()  # connections belong to one event loop: a new client per run

    async def one(i: int, scheduled: float) -> None:
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        try:
            status = await make_request(client, i)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status = 0  # connection refused/reset or a malformed response: counted, not fatal
        latencies.append((time.perf_counter() - scheduled) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    async def run() -> None:
        started = time.perf_counter() + 0.5
        await asyncio.gather(*(one(i, started + i / rate) for i in range(int(rate * seconds))))

    cpu, started = time.process_time(), time.perf_counter() + 0.5
    asyncio.run(run())
    return latencies, statuses, time.perf_counter() - started, (time.process_time() - cpu) * 1000 / len(latencies)


def matcher_drained(timeout: float) -> float:
    """Seconds until no order is left ``new``: whether the matcher kept up with the offered load."""
    from trading.models import Order

    started = time.perf_counter()
    while Order.objects.filter(status="new").exists():
        if time.perf_counter() - started > timeout:
            raise SystemExit("the matcher did not catch up; see /tmp/bench-api.log")
        time.sleep(0.01)
    return time.perf_counter() - started


def figures(name: str, latencies, statuses, elapsed, client_cpu_ms) -> dict:
    return {
        f"{name}: requests": f"{len(latencies):,} in {elapsed:.1f}s = {len(latencies) / elapsed:,.0f} req/s",
        f"{name}: status codes": ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items())),
        f"{name}: latency p50 / p99": f"{percentile(latencies, 50):.1f} ms / {percentile(latencies, 99):.1f} ms",
        f"{name}: latency p99.9 / max": f"{percentile(latencies, 99.9):.1f} ms / {max(latencies):.1f} ms",
        f"{name}: load generator CPU": f"{client_cpu_ms:.2f} ms per request",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    server_options(parser)
    parser.add_argument("--no-matcher", action="store_true", help="no Celery worker: orders are only accepted")
    args = parser.parse_args()
    django_setup()
    headers = desk_prepare(args.accounts)
    processes = server_start(args.web_workers, args.threads, matcher=not args.no_matcher, server=args.server,
                             worker_nice=args.worker_nice)
    rng = random.Random(7)
    try:
        def placing(prefix: str):
            def place(client: LoadClient, i: int):
                return client.request("POST", "/api/v1/orders/", headers[i % len(headers)],
                                      order_body(rng, f"{prefix}-{i}"))
            return place

        def balances(client: LoadClient, i: int):
            return client.request("GET", "/api/v1/balances/", headers[i % len(headers)], None)

        # Warm-up, not measured: every thread of every web process opens its database and Redis connections on
        # its first requests, and the matcher builds its book; a server in service has done that long ago.
        open_loop(placing("warm-up"), args.rate, WARM_UP_SECONDS)
        open_loop(balances, args.rate, WARM_UP_SECONDS)

        results = {}
        results.update(figures("POST /orders", *open_loop(placing("bench"), args.rate, args.seconds)))
        if not args.no_matcher:
            results["POST /orders: matcher caught up"] = f"{matcher_drained(timeout=60):.2f} s after the last order"
        results.update(figures("GET /balances", *open_loop(balances, args.rate, args.seconds)))
        matcher = "no matcher" if args.no_matcher else f"1 Celery worker matching (nice {args.worker_nice})"
        report(f"API under open-loop load: {args.rate:.0f} req/s, gunicorn {args.web_workers} workers x "
               f"{args.threads} threads, {matcher}", results)
    finally:
        server_stop(processes)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
