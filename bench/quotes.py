"""Held-rate quotes under an open-loop load against gunicorn, on PostgreSQL and Redis: ``POST /quotes/`` at
``--rate`` per second, then ``POST /quotes/<id>/execute/`` of those quotes at the same rate.

Reuses ``api_load``'s machinery (gunicorn start, the open-loop asyncio client, latency from the *scheduled* send
time, the figures). The desk: BTC-USD with a book of 40 price levels a side (so quotes walk it), 50 funded
clients with API keys, the firm's inventory funded within wide limits. Quotes are held for an hour in this run
(``QUOTE_TTL_SECONDS``) so that the execution phase can execute the quotes the first phase asked for; the book does
not move, so none is rejected. No matcher runs: quotes do not touch the order book.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/brokerage_bench_quotes .venv/bin/python bench/quotes.py \
         [--rate 100] [--seconds 20] [--port 8766]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from decimal import Decimal

os.environ.setdefault("CELERY_BROKER_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
os.environ["QUOTE_TTL_SECONDS"] = "3600"

import api_load  # noqa: E402 - after the environment it reads
from common import django_setup, fresh_database, report, tree_cpu_seconds  # noqa: E402

LEVELS = 40
WARM_UP_SECONDS = 3


def desk_prepare(accounts: int) -> tuple[list[int], list[str]]:
    """The market, clients, a resting book of ``LEVELS`` levels each side, and the firm's inventory."""
    from django.contrib.auth import get_user_model
    from setup_desk import api_keys_create, desk_create

    from trading import services
    from trading.models import InventoryLimit, Market
    from trading.services import quotes

    market_id, account_ids = desk_create(accounts=accounts)
    market = Market.objects.select_related("base", "quote").get(pk=market_id)
    makers = account_ids[:2]
    for level in range(LEVELS):
        for side, account_id, price in (("sell", makers[0], Decimal("50001") + level),
                                        ("buy", makers[1], Decimal("49999") - level)):
            services.order_place(account=_account(account_id), market=market, side=side, type="limit",
                                 price=price, size=Decimal("0.5"), client_order_id=f"book-{side}-{level}",
                                 acting_user=None)
    while services.market_match(market_id=market.pk).more:
        pass
    ops = get_user_model().objects.create_superuser("bench-desk", "desk@example.com", "unused")
    for asset, amount in (("BTC", "10000"), ("USD", "1000000000")):
        InventoryLimit.objects.create(asset_id=asset, max_long=Decimal(amount) * 10, max_short=0)
        quotes.inventory_fund(asset=asset, amount=Decimal(amount), reference=f"bench-{asset}", reason="bench",
                              acting_user=ops)
    takers = account_ids[2:]
    return takers, api_keys_create(account_ids=takers)


def _account(account_id: int):
    from accounts.models import ClientAccount

    return ClientAccount.objects.select_related("ledger_account").get(pk=account_id)


def open_quotes() -> list[tuple[int, int]]:
    """(quote id, account id) of every quote not executed yet, oldest first."""
    from trading.models import Quote

    return list(Quote.objects.filter(status="open").order_by("id").values_list("id", "account_id"))


def backend_pids() -> list[int]:
    """The PostgreSQL backends serving the bench database, but this process's own."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                       " AND pid <> pg_backend_pid()")
        return [pid for (pid,) in cursor.fetchall()]


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measured(name: str, gunicorn_pid: int, make_request, rate: float, seconds: int) -> dict:
    """``api_load.figures`` plus what the server spent: CPU of gunicorn and of PostgreSQL's backends per request,
    figures that mean something even when other work shares the machine (latency does not)."""
    pids = backend_pids()
    web, db = tree_cpu_seconds(gunicorn_pid), cpu_of(pids)
    latencies, statuses, elapsed, client_cpu = api_load.open_loop(make_request, rate, seconds)
    web, db = tree_cpu_seconds(gunicorn_pid) - web, cpu_of(pids) - db
    result = api_load.figures(name, latencies, statuses, elapsed, client_cpu)
    result[f"{name}: server CPU"] = (f"gunicorn {web * 1000 / len(latencies):.2f} ms + PostgreSQL "
                                     f"{db * 1000 / len(latencies):.2f} ms per request")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=52)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    api_load.PORT = args.port
    django_setup()
    fresh_database()
    takers, headers = desk_prepare(args.accounts)
    header_of = dict(zip(takers, headers))
    processes = api_load.server_start(args.web_workers, args.threads, matcher=False, worker_nice=10)
    rng = random.Random(11)
    try:
        def asking(client, i: int):
            body = {"market": "BTC-USD", "side": rng.choice(("buy", "sell")),
                    "size": str(Decimal(rng.randint(1, 500)) / 10000)}
            return client.request("POST", "/api/v1/quotes/", headers[i % len(headers)], body)

        def executing(pending: list[tuple[int, int]], prefix: str):
            def execute(client, i: int):
                quote_id, account_id = pending[i % len(pending)]
                return client.request("POST", f"/api/v1/quotes/{quote_id}/execute/", header_of[account_id], {},
                                      {"Idempotency-Key": f"{prefix}-{quote_id}"})
            return execute

        # Warm-up, not measured: connections, caches and the first requests of every web process.
        api_load.open_loop(asking, args.rate, WARM_UP_SECONDS)
        api_load.open_loop(executing(open_quotes(), "warm-up"), args.rate, WARM_UP_SECONDS)

        results = {}
        gunicorn = processes[0].pid
        results.update(measured("POST /quotes", gunicorn, asking, args.rate, args.seconds))
        pending = open_quotes()
        needed = int(args.rate * args.seconds)
        if len(pending) < needed:
            raise SystemExit(f"only {len(pending)} open quotes for {needed} executions; see /tmp/bench-api.log")
        results.update(measured("POST /quotes/<id>/execute", gunicorn, executing(pending, "bench"), args.rate,
                                args.seconds))
        from trading.models import Quote

        results["quotes executed"] = f"{Quote.objects.filter(status='executed').count():,}"
        report(f"Quotes under open-loop load: {args.rate:.0f} req/s, gunicorn {args.web_workers} workers x "
               f"{args.threads} threads, no matcher", results)
    finally:
        api_load.server_stop(processes)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
