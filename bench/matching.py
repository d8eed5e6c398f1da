"""Matching + settlement throughput and acceptance-to-settlement latency, with a real Celery worker on Redis
and PostgreSQL.

Phase 1 (throughput): N orders from many accounts are accepted through trading.services.order_place by
several processes while no worker runs; then one worker starts and the time until no order is left ``new``
gives orders/s and fills/s matched and settled (every fill a committed, balanced ledger entry).
Phase 2 (latency): with the worker running, orders arrive at a steady rate; a poller notes when each becomes
visible as processed (its batch committed). p50/p99 of that delay is acceptance-to-settlement latency.

Phase 3 (candles, ``--phases candles``): the cost of the candle rollup in the matcher's batch, as a controlled
A/B in this process. One database with the desk and ``--candle-orders`` placed orders is the template; each run
copies it (``CREATE DATABASE ... TEMPLATE``), so every run matches the very same orders from the very same state,
and times ``market_match`` until no order is left ``new``, with the rollup on or off (off:
``BatchSettlement._candles_roll_up`` does nothing), alternating on/off/off/on... after a warm-up pair that is not
counted, at each ``--batch-sizes``.

With ``--mix types`` the orders are not all limit orders: 15% good-til-time limits (expiring 11 s to 2 min after
they are placed, so some expire while the worker runs), 10% stop-limits and 5% stop-market orders with stops
around the mid, so that the price moving through them triggers them (README "Order types"). Compare the matcher
worker's CPU per order with ``--mix limit`` (the target: at most 10% more).

Run: .venv/bin/python bench/matching.py [--orders 50000] [--accounts 200] [--rate 1000] [--seconds 15]
     [--phases throughput,latency,candles] [--mix limit|types] [--candle-orders 5000] [--candle-runs 3]
     [--batch-sizes 1000,20]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time

from common import ROOT, django_setup, fresh_database, percentile, report, tree_cpu_seconds

os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")


def place_orders(args: tuple[int, list[int], int, int, float, str]) -> list[tuple[int, float]]:
    """Worker process: place ``count`` orders (at ``rate``/s if given). Returns (order id, accepted at)."""
    market_id, account_ids, count, seed, rate, mix = args
    django_setup()
    from accounts.models import ClientAccount
    from trading.models import Market
    from trading.services import order_place

    rng = random.Random(seed)
    market = Market.objects.get(pk=market_id)
    accounts = list(ClientAccount.objects.filter(pk__in=account_ids))
    accepted = []
    started = time.perf_counter()
    for i in range(count):
        if rate:
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        order = order_place(account=rng.choice(accounts), market=market, acting_user=None, **_order(rng, mix))
        accepted.append((order.pk, time.time()))
    return accepted


def _order(rng, mix="limit"):
    from setup_desk import random_order

    order = random_order(rng)
    if mix != "types":
        return order
    return _typed(rng, order)


def _typed(rng, order: dict) -> dict:
    """Turn some limit orders into good-til-time, stop-limit and stop-market orders (module docstring)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    roll = rng.random()
    if roll < 0.15:
        return {**order, "time_in_force": "gtt", "expire_time": timezone.now() + timedelta(seconds=rng.randint(11, 120))}
    if roll < 0.30:
        # A buy stop above the price it protects, a sell stop below; the price moves +-20 around the mid.
        stop = order["price"] + (Decimal(rng.randint(-500, 500)) / 100)
        if roll < 0.25:
            limit = stop + Decimal("5.00") if order["side"] == "buy" else stop - Decimal("5.00")
            return {**order, "type": "stop_limit", "stop_price": stop, "price": limit}
        if order["side"] == "buy":
            return {"side": "buy", "type": "stop", "stop_price": stop,
                    "funds": (order["size"] * order["price"] * Decimal("1.01")).quantize(Decimal("0.01"))}
        return {"side": "sell", "type": "stop", "stop_price": stop, "size": order["size"]}
    return order


def run_parallel(market_id, account_ids, total, processes, rate=0.0, seed=0, mix="limit"):
    per_process = total // processes
    jobs = [(market_id, account_ids, per_process, seed + p, rate / processes, mix) for p in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return [row for rows in pool.map(place_orders, jobs) for row in rows]


WORKER_NICE = 10  # as ./run starts it: the matcher yields the CPU to the processes that accept orders


def worker_start() -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        ["nice", "-n", str(WORKER_NICE), str(ROOT / ".venv/bin/celery"), "-A", "brokerage", "worker",
         "--concurrency", "1", "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open("/tmp/bench-worker.log", "w"),
    )


def new_orders_left() -> int:
    from trading.models import Order

    return Order.objects.filter(status="new").count()


def wait_until_drained(timeout: float) -> float:
    deadline = time.time() + timeout
    while new_orders_left():
        if time.time() > deadline:
            raise SystemExit("the worker did not drain the orders in time; see /tmp/bench-worker.log")
        time.sleep(0.02)
    return time.time()


def phase_throughput(market_id, account_ids, orders, processes, mix="limit") -> dict:
    from django.db import connection

    from trading.models import Fill

    started = time.perf_counter()
    run_parallel(market_id, account_ids, orders, processes, mix=mix)
    placing = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    fills_before = Fill.objects.count()
    worker = worker_start()
    try:
        while new_orders_left() == orders:  # the clock starts when the worker has committed its first batch
            time.sleep(0.005)
        t0, cpu0, matched0 = time.time(), tree_cpu_seconds(worker.pid), orders - new_orders_left()
        t1 = wait_until_drained(timeout=900)
        cpu = tree_cpu_seconds(worker.pid) - cpu0
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    fills = Fill.objects.count() - fills_before
    elapsed = t1 - t0
    return {
        "orders accepted (order_place)": f"{orders:,} in {placing:.1f}s = {orders / placing:,.0f} orders/s "
                                         f"({processes} processes)",
        "matched + settled": f"{orders:,} orders, {fills:,} fills in {elapsed:.1f}s",
        "matching throughput": f"{orders / elapsed:,.0f} orders/s, {fills / elapsed:,.0f} fills/s",
        "matcher worker CPU": f"{cpu * 1000 / (orders - matched0):.3f} ms per order",
        "stops triggered / waiting, orders expired": f"{_count(triggered_at__isnull=False):,} / "
                                                     f"{_count(status='pending_trigger'):,}, "
                                                     f"{_count(status='expired'):,}",
    }


def _count(**lookup) -> int:
    from trading.models import Order

    return Order.objects.filter(**lookup).count()


def phase_latency(market_id, account_ids, rate, seconds, processes, mix="limit") -> dict:
    import threading

    from django.db import connections

    total = int(rate * seconds)
    processed_at: dict[int, float] = {}
    stop = threading.Event()

    def poll():
        with connections["default"].cursor() as cursor:
            last_id = 0
            while not stop.is_set():
                cursor.execute("SELECT id FROM trading_order WHERE id > %s AND status <> 'new' ORDER BY id",
                               [last_id])
                now = time.time()
                for (order_id,) in cursor.fetchall():
                    processed_at.setdefault(order_id, now)
                cursor.execute("SELECT coalesce(min(id) - 1, %s) FROM trading_order WHERE status = 'new' AND id > %s",
                               [max(processed_at, default=last_id), last_id])
                last_id = cursor.fetchone()[0]
                time.sleep(0.005)

    worker = worker_start()
    time.sleep(3)  # let the worker boot before the clock matters
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    cpu_before = tree_cpu_seconds(worker.pid)
    try:
        accepted = run_parallel(market_id, account_ids, total, processes, rate=rate, seed=1000, mix=mix)
        wait_until_drained(timeout=300)
        time.sleep(0.05)
        worker_cpu = tree_cpu_seconds(worker.pid) - cpu_before
    finally:
        stop.set()
        poller.join()
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    latencies = [(processed_at[i] - t) * 1000 for i, t in accepted if i in processed_at]
    return {
        "offered load": f"{rate:,.0f} orders/s for {seconds}s ({len(accepted):,} orders)",
        "acceptance -> settled p50": f"{percentile(latencies, 50):.0f} ms",
        "acceptance -> settled p99": f"{percentile(latencies, 99):.0f} ms",
        "matcher worker CPU": f"{worker_cpu * 1000 / len(accepted):.2f} ms per order",
    }


def _database_use(name: str) -> None:
    from django.db import connections

    connections.close_all()
    connections["default"].settings_dict["NAME"] = name


def _admin_execute(statement: str) -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432,
                         user=db.get("USER") or "postgres", password=db.get("PASSWORD") or None, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(statement)


def _match_all(market_id: int) -> tuple[float, float, int, int]:
    """Run the matcher in this process until no order is left new: (wall s, CPU s, batches, fills)."""
    from trading.services import market_match

    batches = fills = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while True:
        summary = market_match(market_id=market_id, wait=True)
        batches, fills = batches + 1, fills + summary.fills
        if not summary.more:
            break
    return time.perf_counter() - wall0, time.process_time() - cpu0, batches, fills


def phase_candles(market_id, account_ids, orders, processes, runs, batch_sizes) -> dict:
    """The rollup's cost per order: the same orders matched from copies of one database, rollup on and off."""
    from django.conf import settings
    from django.db import connection

    from trading.books import books_clear
    from trading.models import Candle, Order
    from trading.services.settlement import BatchSettlement

    run_parallel(market_id, account_ids, orders, processes)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    template = settings.DATABASES["default"]["NAME"]
    copy = f"{template}_run"
    rolled_up = BatchSettlement._candles_roll_up
    figures, results, inside = {}, {}, {}
    for batch_size in batch_sizes:
        settings.MATCHER_BATCH_SIZE = batch_size
        for run in range(-1, runs):  # run -1: a warm-up pair, not counted
            for rollup in ((True, False) if run % 2 == 0 else (False, True)):
                _database_use(template)  # no session may stay on the template while it is copied
                _admin_execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
                _admin_execute(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
                _database_use(copy)
                books_clear()
                spent = [0.0]  # wall seconds inside the rollup itself (its Python and its statement)

                def timed(self, fill_ids):
                    started = time.perf_counter()
                    rolled_up(self, fill_ids)
                    spent[0] += time.perf_counter() - started

                BatchSettlement._candles_roll_up = timed if rollup else (lambda self, fill_ids: None)
                try:
                    wall, cpu, batches, fills = _match_all(market_id)
                finally:
                    BatchSettlement._candles_roll_up = rolled_up
                assert not Order.objects.filter(status="new").exists()
                assert Candle.objects.exists() == (rollup and fills > 0)
                if run >= 0:
                    results.setdefault((batch_size, rollup), []).append((wall * 1000 / orders, cpu * 1000 / orders))
                    if rollup:
                        inside.setdefault(batch_size, []).append((spent[0] * 1000 / orders, spent[0] / wall))
                print(f"   {'warm-up ' if run < 0 else ''}batch {batch_size:>4}, rollup {'on ' if rollup else 'off'}: "
                      f"{wall:.2f} s wall, "
                      f"{cpu:.2f} s CPU, {batches} batches, {fills} fills", flush=True)
    _database_use(template)
    _admin_execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
    for batch_size in batch_sizes:
        for rollup in (False, True):
            walls = [w for w, _ in results[(batch_size, rollup)]]
            cpus = [c for _, c in results[(batch_size, rollup)]]
            figures[f"batches of {batch_size}, rollup {'on' if rollup else 'off'}"] = (
                f"{statistics.median(walls):.3f} ms wall/order ({min(walls):.3f}-{max(walls):.3f}), "
                f"{statistics.median(cpus):.3f} ms CPU/order ({min(cpus):.3f}-{max(cpus):.3f})")
        on, off = (statistics.median(w for w, _ in results[(batch_size, r)]) for r in (True, False))
        figures[f"batches of {batch_size}, on - off"] = f"{(on - off) * 1000:+.1f} us/order ({(on / off - 1):+.1%})"
        per_order, shares = [p for p, _ in inside[batch_size]], [s for _, s in inside[batch_size]]
        figures[f"batches of {batch_size}, inside the rollup"] = (
            f"{statistics.median(per_order) * 1000:.1f} us/order ({min(per_order) * 1000:.1f}-"
            f"{max(per_order) * 1000:.1f}), {statistics.median(shares):.2%} of matching wall time "
            f"({min(shares):.2%}-{max(shares):.2%})")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=50000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--phases", default="throughput,latency", help="which phases to run, comma-separated")
    parser.add_argument("--candle-orders", type=int, default=5000)
    parser.add_argument("--candle-runs", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1000,20", help="candles phase: MATCHER_BATCH_SIZE values")
    parser.add_argument("--mix", choices=["limit", "types"], default="limit",
                        help="limit orders only, or with good-til-time, stop-limit and stop-market orders")
    args = parser.parse_args()
    django_setup()
    fresh_database()
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    from setup_desk import desk_create

    market_id, account_ids = desk_create(accounts=args.accounts)
    if "throughput" in args.phases:
        report(f"matching + settlement throughput (1 worker, PostgreSQL, Redis, mix {args.mix})",
               phase_throughput(market_id, account_ids, args.orders, args.processes, args.mix))
    if "latency" in args.phases:
        report("acceptance -> settlement latency under steady load",
               phase_latency(market_id, account_ids, args.rate, args.seconds, args.processes, args.mix))
    if "candles" in args.phases:
        report(f"candle rollup: in-process market_match over the same {args.candle_orders:,} orders, on vs off",
               phase_candles(market_id, account_ids, args.candle_orders, args.processes, args.candle_runs,
                             [int(b) for b in args.batch_sizes.split(",")]))

    from ledger import selectors

    assert all(total == 0 for total in selectors.trial_balance().values()), "trial balance is not zero"
    assert selectors.balance_drift() == [], "balances drifted from postings"
    print("   books: trial balance zero per asset, no balance drift")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
