"""A trading desk for benchmarks: one market, many funded client accounts, built through the services."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal

FUNDING = {"USD": Decimal("100000000.00"), "BTC": Decimal("10000")}


def desk_create(*, accounts: int) -> tuple[int, list[int]]:
    """Create BTC-USD and ``accounts`` active, KYC-approved, funded clients. Returns (market id, account ids)."""
    from django.contrib.auth import get_user_model

    from accounts import services as accounts_services
    from accounts.models import KycStatus
    from trading.models import Market

    ops = get_user_model().objects.create_user("bench-ops", is_staff=True)
    approver = get_user_model().objects.create_user("bench-approver", is_staff=True)  # deposits: dual control
    # KYC is approved by a second person with the permission (README "Security").
    from django.contrib.auth.models import Permission

    kyc_officer = get_user_model().objects.create_user("bench-compliance", is_staff=True)
    kyc_officer.user_permissions.add(Permission.objects.get(codename="approve_kyc"))
    market = Market.objects.create(
        symbol="BTC-USD", base_id="BTC", quote_id="USD", tick_size=Decimal("0.01"), lot_size=Decimal("0.0001"),
        min_size=Decimal("0.0001"), max_size=Decimal("100"),
    )
    account_ids = []
    for i in range(accounts):
        account = accounts_services.client_account_create(legal_name=f"Bench client {i}", acting_user=ops)
        accounts_services.kyc_status_set(account=account, kyc_status=KycStatus.APPROVED, acting_user=kyc_officer)
        account = accounts_services.account_activate(account=account, acting_user=ops)
        for asset, amount in FUNDING.items():
            deposit = accounts_services.deposit_request(
                account=account, asset=asset, amount=amount, acting_user=ops, idempotency_key=f"bench-{asset}",
                **({"bank_reference": "BENCH"} if asset == "USD" else {"tx_hash": "bench"}),
            )
            deposit = accounts_services.deposit_approve(deposit=deposit, acting_user=approver)
            accounts_services.deposit_complete(deposit=deposit, acting_user=ops)
        account_ids.append(account.pk)
    return market.pk, account_ids


def random_order(rng, *, mid: Decimal = Decimal("50000.00")) -> dict:
    """A limit order around ``mid``: about half of all orders cross the book."""
    side = rng.choice(("buy", "sell"))
    offset = Decimal(rng.randint(-2000, 2000)) / 100
    size = Decimal(rng.randint(1, 500)) / 10000
    return {"side": side, "type": "limit", "price": mid + offset, "size": size}


def api_keys_create(*, account_ids: list[int]) -> list[str]:
    """One trader with an API key (read + trade) per account. Returns the ``Authorization`` header values."""
    from django.contrib.auth import get_user_model

    from accounts import services as accounts_services
    from accounts.models import ClientAccount, Role

    ops = get_user_model().objects.get(username="bench-ops")
    headers = []
    for account in ClientAccount.objects.filter(pk__in=account_ids).order_by("pk"):
        membership = accounts_services.client_user_add(
            account=account, username=f"bench-trader-{account.pk}", role=Role.TRADER, acting_user=ops
        )
        _, secret = accounts_services.api_key_create(user=membership.user, name="bench", scopes=["read", "trade"])
        headers.append(f"ApiKey {secret}")
    return headers


@dataclass
class InProcessDesk:
    market: object  # trading.models.Market
    account_ids: list[int]
    accounts: list  # accounts.models.ClientAccount, with their ledger accounts
    backend: int  # the PostgreSQL backend of this process's connection, for its CPU time

    def order_place(self, i: int, rng, client_order_id: str):
        """The bench mix's next order (``random_order``) for the i-th account (round robin), through the service."""
        from trading import services

        return services.order_place(account=self.accounts[i % len(self.accounts)], market=self.market,
                                    acting_user=None, client_order_id=client_order_id, **random_order(rng))


def in_process_desk_create(*, accounts: int) -> InProcessDesk:
    """For the benches that measure one process and its PostgreSQL backend: a fresh database and broker database
    (``CELERY_BROKER_URL``: wake-ups are published there and never consumed), and the desk of ``desk_create``."""
    import redis
    from common import fresh_database
    from django.db import connection

    from accounts.models import ClientAccount
    from trading.models import Market

    fresh_database()
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    market_id, account_ids = desk_create(accounts=accounts)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [(backend,)] = cursor.fetchall()
    return InProcessDesk(
        market=Market.objects.get(pk=market_id), account_ids=account_ids, backend=backend,
        accounts=list(ClientAccount.objects.select_related("ledger_account").filter(pk__in=account_ids)),
    )
