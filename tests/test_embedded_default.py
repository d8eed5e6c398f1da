"""The embedded default (no DATABASE_URL, no broker: SQLite and in-process Celery tasks) still runs the main job:
migrate, seed the demo and trade. The rest of the suite runs on PostgreSQL, so raw SQL written for PostgreSQL on a
hot path would otherwise break `./run` unnoticed."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TRADE = """
from collections import defaultdict
from accounts.models import ClientAccount
from ledger.models import Posting
from trading.models import Fill, Market, Order
from trading.services import order_place

market = Market.objects.get(symbol="BTC-USD")
ask = Order.objects.filter(market=market, side="sell", status="open").order_by("price").first()
buyer = ClientAccount.objects.exclude(pk=ask.account_id).filter(api_keys__isnull=False).first()
order_place(account=buyer, market=market, side="buy", type="limit", price=ask.price, size=ask.size,
            client_order_id="embedded-test", acting_user=None)
fill = Fill.objects.get()
assert (fill.price, fill.size) == (ask.price, ask.size), fill
# Summed in Python: SQLite's SUM of a decimal column is a float (README "Set-up").
totals = defaultdict(int)
for asset, amount in Posting.objects.values_list("asset_id", "amount"):
    totals[asset] += amount
assert all(total == 0 for total in totals.values()), totals
print("traded", fill.size, "@", fill.price)
# The event log on SQLite: the sequencer numbers every event once, gap-free per account.
from events.models import Event, Sequenced
from events.selectors import account_events
from events.services import sequence_all
assert sequence_all() == Event.objects.count() > 0 and sequence_all() == 0
page = account_events(account_id=buyer.pk, after=0, limit=500)
assert [q.account_seq for q in page.events if q.account_id] == list(range(1, Sequenced.objects.filter(
    account_id=buyer.pk).count() + 1))
assert "fill.created" in {q.type for q in page.events}, [q.type for q in page.events]
print("events", Event.objects.count())
"""


def manage(*args: str, env: dict) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_migrate_seed_and_a_trade_on_sqlite_with_in_process_tasks(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", DEBUG="1", DEMO_DATA="1", LOG_LEVEL="WARNING")
    manage("migrate", "--noinput", env=env)
    manage("seed_demo", env=env)
    assert "traded" in manage("shell", "-c", TRADE, env=env)
