"""Seed demo data for a local run: markets, a superuser, two funded demo clients with API keys, resting orders,
the quoting desk's inventory and limits.

Only on explicit opt-in, and never with DEBUG off (README "Security"): the command refuses unless DEBUG=1 and
DEMO_DATA=1 (``./run`` sets both for a local run and says so). No fixed password: the superuser's and the clients'
passwords and the clients' API keys are generated on every run and written once to this command's standard output
(never to a log); ``./run`` shows them apart from the start-up log. The superuser gets an authenticator (TOTP) on
its first run: its QR code and key are shown then, and ``DEBUG=1 manage.py staff_otp_code admin`` prints a current
code.
Safe to run again.
"""

from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.demo_clients import demo_clients_create, demo_password
from console.demo_desk import demo_desk_create
from console.demo_orders import demo_orders_place
from console.staff_otp import staff_totp_enrol, totp_enrolment_text
from ledger.services import reference_data_ensure
from trading.models import Market

DEMO_ADMIN = "admin"
DEMO_MARKETS = [
    # symbol, base, quote, tick, lot, min, max
    ("BTC-USD", "BTC", "USD", "0.01", "0.00001", "0.00001", "100"),
    ("ETH-USD", "ETH", "USD", "0.01", "0.0001", "0.0001", "1000"),
    ("PAXG-USD", "PAXG", "USD", "0.01", "0.001", "0.001", "1000"),
    ("BTC-USDP", "BTC", "USDP", "0.01", "0.00001", "0.00001", "100"),
]


class Command(BaseCommand):
    help = ("Local demo data (needs DEBUG=1 and DEMO_DATA=1): markets, a superuser 'admin', clients and orders; "
            "prints the generated credentials once.")

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Refused: demo data and demo users are for local runs only (DEBUG=1).")
        if not settings.DEMO_DATA:
            raise CommandError("Refused: demo data is opt-in; set DEMO_DATA=1 (./run does for a local run).")
        with transaction.atomic():
            credentials = self._seed()
        self.stdout.write(credentials)

    def _seed(self) -> str:
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
        admin, password = _demo_superuser()
        lines = [f"Console: superuser {DEMO_ADMIN!r} password {password!r} (new on every run)"]
        if not TOTPDevice.objects.filter(user=admin, confirmed=True).exists():
            lines.append(totp_enrolment_text(staff_totp_enrol(user=admin)).rstrip("\n"))
        lines.append(f"  its current code, without an authenticator app: DEBUG=1 .venv/bin/python manage.py "
                     f"staff_otp_code {DEMO_ADMIN} (local runs only)")
        clients = demo_clients_create(acting_user=admin)
        lines += [f"Client: {client}" for client in clients]
        orders = demo_orders_place(acting_user=admin)
        lines.append(f"Markets {', '.join(m[0] for m in DEMO_MARKETS)}; {len(orders)} resting demo orders.")
        demo_desk_create(acting_user=admin)
        lines.append("Quoting desk: demo inventory and exposure limits.")
        return "\n".join(lines) + "\n"


def _demo_superuser():
    """The demo's superuser with a new random password."""
    password = demo_password()
    User = get_user_model()
    admin = User.objects.filter(username=DEMO_ADMIN).first()
    if admin is None:
        admin = User.objects.create_superuser(DEMO_ADMIN, f"{DEMO_ADMIN}@example.com", password)
    else:
        admin.set_password(password)
        admin.save(update_fields=["password"])
    return admin, password
