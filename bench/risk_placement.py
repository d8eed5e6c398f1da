"""What pre-trade risk costs order placement (issue 16, item 2): orders placed in-process through
``trading.services.order_place`` on a market without risk limits, then with every limit set (price collar, order
notional caps, daily notional cap, open-order cap), against a resting two-sided book. The limits are generous, so
every order is accepted: this measures the checks, not refusals.

Rounds alternate (without, with, without, ...) so drift of the shared machine hits both; the figures are the
median of the rounds' orders/s and their spread.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/<bench db> .venv/bin/python bench/risk_placement.py
     [--orders 1000] [--rounds 3] [--accounts 50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from decimal import Decimal

from common import django_setup, fresh_database, report

LIMITS = {"price_collar_bps": Decimal("1500"), "max_market_order_notional": Decimal("500000"),
          "max_limit_order_notional": Decimal("1500000"), "max_daily_notional": Decimal("1000000000"),
          "max_open_orders": 100000}
NO_LIMITS = {name: None for name in LIMITS}


def place_many(market_id: int, account_ids: list[int], count: int, seed: int) -> float:
    """Place ``count`` random limit orders; return orders/s."""
    from setup_desk import random_order

    from accounts.models import ClientAccount
    from trading.models import Market
    from trading.services import order_place

    rng = random.Random(seed)
    market = Market.objects.select_related("base", "quote").get(pk=market_id)
    accounts = list(ClientAccount.objects.filter(pk__in=account_ids).select_related("ledger_account"))
    started = time.perf_counter()
    for _ in range(count):
        order_place(account=rng.choice(accounts), market=market, acting_user=None, **random_order(rng))
    return count / (time.perf_counter() - started)


def statements_per_order(market_id: int, account_ids: list[int], count: int = 50) -> float:
    """Database round trips per placed order (deterministic, unlike time on a shared machine)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        place_many(market_id, account_ids, count, seed=99)
    return (len(captured.captured_queries) - 2) / count  # less the two set-up reads of place_many


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=50)
    args = parser.parse_args()
    django_setup()
    fresh_database()
    from django.conf import settings

    settings.CELERY_TASK_ALWAYS_EAGER = False  # no worker: orders stay new unless matched below
    from setup_desk import desk_create

    import trading.services.placement as placement
    from trading.models import Market
    from trading.services import market_match

    placement.market_wake_on_commit = lambda market_id: None  # placement alone, without publishing wake-ups
    market_id, account_ids = desk_create(accounts=args.accounts)
    place_many(market_id, account_ids, 500, seed=-1)
    while market_match(market_id=market_id, wait=True).more:  # a resting two-sided book for the collar
        pass
    figures = {"without": [], "with": []}
    for round_ in range(args.rounds):
        for label, values in (("without", NO_LIMITS), ("with", LIMITS)):
            Market.objects.filter(pk=market_id).update(**values)
            figures[label].append(place_many(market_id, account_ids, args.orders, seed=round_))
    statements = {}
    for label, values in (("without", NO_LIMITS), ("with", LIMITS)):
        Market.objects.filter(pk=market_id).update(**values)
        statements[label] = statements_per_order(market_id, account_ids)
    medians = {label: statistics.median(rates) for label, rates in figures.items()}
    paired = statistics.median(without / with_ for without, with_ in zip(figures["without"], figures["with"]))
    report(f"order placement, {args.orders} orders x {args.rounds} rounds, in-process", {
        **{f"{label} risk limits (orders/s)": f"median {medians[label]:.0f}, runs "
           + ", ".join(f"{r:.0f}" for r in rates) for label, rates in figures.items()},
        "cost of the limits (medians)": f"{(medians['without'] / medians['with'] - 1) * 100:+.1f}% time per order",
        "cost, median of paired rounds": f"{(paired - 1) * 100:+.1f}% time per order",
        **{f"statements per order, {label} limits": f"{n:.2f}" for label, n in statements.items()},
    })


if __name__ == "__main__":
    main()
