"""Demo resting orders for the demo clients (``console.demo_clients``), called by the ``seed_demo`` command.

Safe to run again: every order has a fixed client order id, so a second run returns the orders of the first.
Bids and asks do not cross, so the demo book shows depth on both sides without trading.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from accounts.models import ClientAccount
from console.demo_clients import DEMO_CLIENTS
from trading import services
from trading.models import Market, Order

AURORA, BOREALIS = DEMO_CLIENTS[0].legal_name, DEMO_CLIENTS[1].legal_name

DEMO_ORDERS = [
    # client, market, side, size, price, client order id
    (AURORA, "BTC-USD", "buy", "0.50000", "64000.00", "demo-btc-bid-1"),
    (AURORA, "BTC-USD", "buy", "1.00000", "63500.00", "demo-btc-bid-2"),
    (BOREALIS, "BTC-USD", "sell", "0.40000", "65500.00", "demo-btc-ask-1"),
    (BOREALIS, "BTC-USD", "sell", "0.80000", "66000.00", "demo-btc-ask-2"),
    (AURORA, "ETH-USD", "buy", "5.0000", "3100.00", "demo-eth-bid-1"),
    (BOREALIS, "ETH-USD", "sell", "4.0000", "3250.00", "demo-eth-ask-1"),
]


@transaction.atomic
def demo_orders_place(*, acting_user=None, stdout=None) -> list[Order]:
    """Place the demo orders whose client and market exist. Returns the orders (new or already placed)."""
    accounts = {a.legal_name: a for a in ClientAccount.objects.filter(legal_name__in=[AURORA, BOREALIS])}
    markets = {m.symbol: m for m in Market.objects.select_related("base", "quote")}
    orders = []
    for client, symbol, side, size, price, client_order_id in DEMO_ORDERS:
        if client not in accounts or symbol not in markets:
            continue
        orders.append(services.order_place(
            account=accounts[client], market=markets[symbol], side=side, type="limit", size=Decimal(size),
            price=Decimal(price), client_order_id=client_order_id, acting_user=acting_user,
        ))
    if stdout is not None:
        stdout.write(f"Demo orders: {len(orders)} resting orders on " + ", ".join(sorted({o[1] for o in DEMO_ORDERS}))
                     + "\n")
    return orders
