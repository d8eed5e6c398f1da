"""CPU per order placement, in one process and its PostgreSQL backend: Python (``time.process_time``) and the
backend's user + system time (/proc), per ``order_place`` committed, per API-key lookup and per ``POST /orders``
through Django's WSGI handler (middleware, DRF, authentication, throttle, serializers, placement, response), with
no HTTP server and no matcher (the wake-ups go to Redis and nobody answers them). What ``bench/capacity.py``
measures under load, without the load: the cost of the work itself, not of sharing two cores.

Run: .venv/bin/python bench/placement_cpu.py [--orders 1000] [--accounts 20]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time

from common import django_setup, report, tree_cpu_seconds

os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")  # wake-ups published, never consumed
os.environ.setdefault("CACHE_URL", os.environ["CELERY_BROKER_URL"])  # rate-limit windows as deployed: on Redis
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("API_IP_THROTTLE_RATE", "10000000/min")  # every request comes from 127.0.0.1


def measured(run, n: int, backend: int) -> str:
    for i in range(20):  # warm: caches, and statements prepared on the connection
        run(-1 - i)
    cpu, pg, wall = time.process_time(), tree_cpu_seconds(backend), time.perf_counter()  # a backend has no children
    for i in range(n):
        run(i)
    per = 1000 / n
    return (f"Python {(time.process_time() - cpu) * per:.2f} ms, "
            f"PostgreSQL {(tree_cpu_seconds(backend) - pg) * per:.2f} ms, "
            f"wall {(time.perf_counter() - wall) * per:.2f} ms")


def wsgi_post(app, path: str, header: str, body: dict) -> None:
    raw = json.dumps(body).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
               "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(raw),
               "CONTENT_LENGTH": str(len(raw)), "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": header,
               "REMOTE_ADDR": "127.0.0.1", "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
               "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
               "SERVER_PROTOCOL": "HTTP/1.1"}
    status = []
    body_out = b"".join(app(environ, lambda s, headers, *args: status.append(s)))
    if not status[0].startswith("201"):
        raise SystemExit(f"POST {path}: {status[0]} {body_out[:300]!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=20)
    args = parser.parse_args()
    django_setup()
    from django.core.handlers.wsgi import WSGIHandler
    from setup_desk import api_keys_create, in_process_desk_create, random_order

    from accounts.authentication import api_key_by_prefix
    from accounts.models import ApiKey

    desk = in_process_desk_create(accounts=args.accounts)
    backend = desk.backend
    headers = api_keys_create(account_ids=desk.account_ids)
    prefix = ApiKey.objects.first().prefix
    rng, app = random.Random(7), WSGIHandler()

    def place(i: int) -> None:
        desk.order_place(i, rng, f"service-{i}")

    def post(i: int) -> None:
        order = {k: str(v) for k, v in random_order(rng).items()}
        wsgi_post(app, "/api/v1/orders/", headers[i % len(headers)],
                  {"market": "BTC-USD", "client_order_id": f"api-{i}", **order})

    report(f"CPU per operation, {args.orders:,} each, one process and its PostgreSQL backend", {
        "API-key lookup": measured(lambda i: api_key_by_prefix(prefix), args.orders, backend),
        "order_place (committed)": measured(place, args.orders, backend),
        "POST /orders (WSGI, no server)": measured(post, args.orders, backend),
    })


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
