"""Seed demo data: markets, an ops superuser, two funded demo clients with API keys, a few resting orders, the
quoting desk's inventory and limits.
Safe to run again (the demo API keys are rotated, since a secret is shown only when it is created)."""

import os
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from console.demo_clients import demo_clients_create
from console.demo_desk import demo_desk_create
from console.demo_orders import demo_orders_place
from ledger.services import reference_data_ensure
from trading.models import Market

DEMO_MARKETS = [
    # symbol, base, quote, tick, lot, min, max
    ("BTC-USD", "BTC", "USD", "0.01", "0.00001", "0.00001", "100"),
    ("ETH-USD", "ETH", "USD", "0.01", "0.0001", "0.0001", "1000"),
    ("PAXG-USD", "PAXG", "USD", "0.01", "0.001", "0.001", "1000"),
    ("BTC-USDP", "BTC", "USDP", "0.01", "0.00001", "0.00001", "100"),
]


class Command(BaseCommand):
    help = "Create demo markets, an admin user (admin / DEMO_ADMIN_PASSWORD, default 'admin'), clients and orders."

    @transaction.atomic
    def handle(self, *args, **options):
        reference_data_ensure()
        for symbol, base, quote, tick, lot, min_size, max_size in DEMO_MARKETS:
            Market.objects.get_or_create(
                symbol=symbol,
                defaults={
                    "base_id": base,
                    "quote_id": quote,
                    "tick_size": Decimal(tick),
                    "lot_size": Decimal(lot),
                    "min_size": Decimal(min_size),
                    "max_size": Decimal(max_size),
                },
            )
        User = get_user_model()
        admin = User.objects.filter(username="admin").first() or User.objects.create_superuser(
            "admin", "admin@example.com", os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        )
        demo_clients_create(acting_user=admin, stdout=self.stdout)
        demo_orders_place(acting_user=admin, stdout=self.stdout)
        demo_desk_create(acting_user=admin, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready: admin user 'admin', markets " + ", ".join(m[0] for m in DEMO_MARKETS)))
