"""CPU per matcher batch, in one process and its PostgreSQL backend: ``market_match`` run in-process after every
``--per-batch`` orders placed, as a matcher worker does at a low rate (a batch of one or two orders) or under a
backlog (hundreds). Python (``time.process_time``) and the backend's user + system time (/proc) per batch, over
``--batches`` batches after a warm-up; placing the orders is not counted. What the matcher's fixed work per batch
costs, without Celery and without the load of ``bench/capacity.py``.

Run: .venv/bin/python bench/batch_cpu.py [--per-batch 1,20] [--batches 300] [--accounts 20]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

from common import django_setup, report, tree_cpu_seconds

os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")  # wake-ups published, never consumed
WARM_UP_BATCHES = 20


def sizes_list(text: str) -> list[int]:
    sizes = [int(n) for n in text.split(",") if n.strip().isdigit()]
    if not sizes or len(sizes) != len(text.split(",")) or min(sizes) < 1:
        raise argparse.ArgumentTypeError("whole numbers of 1 or more, comma-separated (e.g. 1,20)")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-batch", type=sizes_list, default="1,20", help="orders per batch, comma-separated")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--accounts", type=int, default=20)
    args = parser.parse_args()
    django_setup()
    from setup_desk import in_process_desk_create

    from trading import services

    desk = in_process_desk_create(accounts=args.accounts)
    market_id, backend = desk.market.pk, desk.backend
    rng, placed = random.Random(7), iter(range(10**9))

    def place(count: int) -> None:
        for _ in range(count):
            i = next(placed)
            desk.order_place(i, rng, f"o-{i}")

    place(200)  # a resting book to trade with
    services.market_match(market_id=market_id, wait=True)
    figures = {}
    for per_batch in args.per_batch:
        for _ in range(WARM_UP_BATCHES):
            place(per_batch)
            services.market_match(market_id=market_id, wait=True)
        python = postgresql = 0.0
        for _ in range(args.batches):
            place(per_batch)
            cpu, pg = time.process_time(), tree_cpu_seconds(backend)
            services.market_match(market_id=market_id, wait=True)
            python += time.process_time() - cpu
            postgresql += tree_cpu_seconds(backend) - pg
        python, postgresql = python * 1000 / args.batches, postgresql * 1000 / args.batches  # ms per batch
        figures[f"batch of {per_batch}"] = (
            f"Python {python:.2f} ms, PostgreSQL {postgresql:.2f} ms per batch"
            f" ({python / per_batch:.2f} + {postgresql / per_batch:.2f} ms per order)")
    report(f"CPU per matcher batch, {args.batches} batches each, one process and its PostgreSQL backend", figures)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
