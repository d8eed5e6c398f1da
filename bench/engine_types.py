"""The pure engine's cost per order, limit orders only against a mix with stops and good-til-time orders (issue 16),
on the same random flow: no database, no broker, so the figure is steadier than bench/matching.py's on a shared
machine. It isolates what the new types cost the engine (the stop queues checked after each trade, the expiry
heap); the database side of a batch is measured by ``bench/matching.py --mix types``.

Run: .venv/bin/python bench/engine_types.py [--orders 50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trading import engine as e  # noqa: E402

MID = Decimal("50000.00")


def flow(n: int, mix: str, seed: int = 7) -> list[e.Incoming]:
    rng = random.Random(seed)
    orders = []
    for oid in range(1, n + 1):
        side = rng.choice((e.BUY, e.SELL))
        price = MID + Decimal(rng.randint(-2000, 2000)) / 100
        size = Decimal(rng.randint(1, 500)) / 10000
        order = e.Incoming(oid, rng.randint(1, 200), side, e.LIMIT, price, size)
        roll = rng.random() if mix == "types" else 1.0
        if roll < 0.15:
            order.time_in_force, order.expire_at = e.GTT, oid + rng.randint(100, 5000)
        elif roll < 0.25:
            stop = price + Decimal(rng.randint(-500, 500)) / 100
            order.type, order.stop_price = e.STOP_LIMIT, stop
            order.price = stop + (Decimal(5) if side == e.BUY else Decimal(-5))
        elif roll < 0.30:
            order.type, order.price, order.time_in_force = e.STOP, None, e.IOC
            order.stop_price = price + Decimal(rng.randint(-500, 500)) / 100
            if side == e.BUY:
                order.funds, order.size = (size * price * Decimal("1.01")).quantize(Decimal("0.01")), None
        orders.append(order)
    return orders


def run(orders: list[e.Incoming]) -> float:
    book = e.Book(tick_size=Decimal("0.01"), lot_size=Decimal("0.0001"))
    started = time.perf_counter()
    for order in orders:
        book.expire(order.id)  # the clock: one tick per order
        book.submit(order, now=order.id)
    return (time.perf_counter() - started) / len(orders) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = {"limit": [], "types": []}
    for _ in range(args.runs):
        for mix in results:  # alternate, so drifting load hits both alike
            results[mix].append(run(flow(args.orders, mix)))
    for mix, values in results.items():
        print(f"{mix:6} {statistics.median(values):7.2f} us per order (runs: "
              f"{', '.join(f'{v:.2f}' for v in values)})")
    ratio = statistics.median(results["types"]) / statistics.median(results["limit"])
    print(f"types / limit: {ratio:.3f}")


if __name__ == "__main__":
    main()
