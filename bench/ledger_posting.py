"""Ledger posting rate through ledger.services: single entries (one transaction each) and batched entries.

Run: .venv/bin/python bench/ledger_posting.py [--entries 5000] [--batch 500]
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal

from common import django_setup, fresh_database, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    django_setup()
    fresh_database()

    from accounts.models import ClientAccount
    from ledger import selectors
    from ledger import services as ledger
    from ledger.models import Purpose

    clients = [ledger.client_ledger_account_create(client=ClientAccount.objects.create(legal_name=f"Bench {i}"))
               for i in range(args.clients)]
    custody = ledger.firm_account(Purpose.CUSTODY)

    def legs(i: int):
        amount = Decimal("1.25")
        return [ledger.debit(custody, "USD", amount), ledger.credit(clients[i % len(clients)], "USD", amount)]

    started = time.perf_counter()
    for i in range(args.entries):
        ledger.entry_post(key=f"bench-single:{i}", kind="deposit", legs=legs(i))
    single = time.perf_counter() - started

    started = time.perf_counter()
    for offset in range(0, args.entries, args.batch):
        specs = [ledger.EntrySpec(key=f"bench-batch:{i}", kind="deposit", legs=legs(i))
                 for i in range(offset, min(offset + args.batch, args.entries))]
        ledger.entries_post(specs=specs)
    batched = time.perf_counter() - started

    assert selectors.trial_balance()["USD"] == 0
    assert selectors.balance_drift() == []
    report("ledger posting (2 postings per entry, PostgreSQL)", {
        "entries": str(args.entries),
        "single entry per transaction": f"{args.entries / single:,.0f} entries/s",
        f"batched ({args.batch} per transaction)": f"{args.entries / batched:,.0f} entries/s",
    })


if __name__ == "__main__":
    main()
