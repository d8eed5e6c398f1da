"""Order flow over HTTP for the failover tests: two traders send crossing limit orders at a steady rate to a real
gunicorn; every order has its own client order id, and a failed attempt (connection error, 503) is retried with
the same id, as a client following the API's rules would. ``desk_prepare`` sets up the traders on whatever
database Django is connected to (the test's, or a private PostgreSQL through ``python -m`` this module)."""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from tests.ops.servers import request

SELL_PRICE, BUY_PRICE, SIZE = "100.00", "101.00", "0.01"
FUNDING = {"USD": Decimal("100000"), "BTC": Decimal("100")}


def desk_prepare() -> dict:
    """A market and two funded traders with API keys; returns their keys and what was deposited."""
    from accounts.models import Role
    from tests.api import api_client_for
    from tests.factories import MarketFactory, fund

    MarketFactory()
    seller, buyer = api_client_for(role=Role.TRADER), api_client_for(role=Role.TRADER)
    for client in (seller, buyer):
        for asset, amount in FUNDING.items():
            fund(client.account, asset, amount)
    return {"seller": seller.secret, "buyer": buyer.secret,
            "deposited": {asset: str(amount * 2) for asset, amount in FUNDING.items()}}


@dataclass
class Attempt:
    at: float
    status: int | str
    seconds: float
    code: str | None = None


@dataclass
class OrderFlow:
    """Sends ``rate`` orders per second until ``stop()``; ``accepted`` maps client order id -> order id."""

    url: str
    keys: dict
    rate: float = 20.0
    retry_for: float = 60.0
    attempts: list[Attempt] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)
    _ids = itertools.count(1)

    def __post_init__(self):
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, senders: int = 4) -> OrderFlow:
        for n in range(senders):
            thread = threading.Thread(target=self._run, args=(n, senders), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.retry_for + 30)

    def _run(self, n: int, senders: int) -> None:
        interval = senders / self.rate
        next_at = time.monotonic() + n * interval / senders
        while not self._stop.is_set():
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            self.place_until_accepted(f"flow-{next(self._ids)}")

    def place_until_accepted(self, client_order_id: str) -> None:
        side = "sell" if hash(client_order_id) % 2 else "buy"
        body = {"market": "BTC-USD", "side": side, "size": SIZE, "client_order_id": client_order_id,
                "price": SELL_PRICE if side == "sell" else BUY_PRICE}
        headers = {"Authorization": f"ApiKey {self.keys['seller' if side == 'sell' else 'buyer']}"}
        deadline = time.monotonic() + self.retry_for
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                status, _, answer = request("POST", f"{self.url}/api/v1/orders/", body, headers, timeout=15)
            except OSError as exc:  # refused, reset, timed out: retry with the same client order id
                self.attempts.append(Attempt(started, type(exc).__name__, time.monotonic() - started))
                time.sleep(0.2)
                continue
            code = answer.get("code") if isinstance(answer, dict) else None
            self.attempts.append(Attempt(started, status, time.monotonic() - started, code))
            if status == 201:
                self.accepted[client_order_id] = answer["id"]
                return
            time.sleep(0.2)
        self.unresolved.append(client_order_id)

    def statuses(self, since: float = 0.0, until: float = float("inf")) -> Counter:
        return Counter(a.status for a in self.attempts if since <= a.at < until)


def books_check(deposited: dict) -> list[str]:
    """``assert_books_consistent`` on the connected database, problems as strings (for a subprocess)."""
    from tests.reliability.invariants import assert_books_consistent
    from trading.models import Order, OrderStatus

    left = Order.objects.filter(status=OrderStatus.NEW).count()
    try:
        assert_books_consistent(deposited={k: Decimal(v) for k, v in deposited.items()}, matched=True)
    except AssertionError as exc:
        return [str(exc), f"{left} orders still new"]
    return []


if __name__ == "__main__":  # python -m tests.reliability.flow prepare|check '<deposited json>'
    import django

    django.setup()
    from trading.models import Order

    if sys.argv[1] == "prepare":
        print(json.dumps(desk_prepare()))
    elif sys.argv[1] == "check":
        problems = books_check(json.loads(sys.argv[2]))
        print(json.dumps({"problems": problems, "orders": Order.objects.count(),
                          "client_order_ids": sorted(Order.objects.values_list("client_order_id", flat=True))}))
