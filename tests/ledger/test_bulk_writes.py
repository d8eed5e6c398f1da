"""core.db bulk writes, the matcher's path for entries, postings, fills, orders and balances."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from core.db import rows_insert, rows_update
from ledger import services as ledger
from ledger.models import Asset, Balance, JournalEntry, Posting, Purpose
from tests.factories import ClientAccountFactory

pytestmark = pytest.mark.django_db


def entry_rows(keys: list[str]) -> list[tuple]:
    now = timezone.now()
    return [(key, "test", "", "hash", None, None, now) for key in keys]


ENTRY_FIELDS = ["key", "kind", "memo", "content_hash", "reverses_id", "created_by_id", "created_at"]


def test_insert_assigns_ids_in_row_order_and_returns_the_asked_columns():
    keys = [f"bulk:{i}" for i in range(50)]
    with transaction.atomic():
        returned = rows_insert(JournalEntry, ENTRY_FIELDS, entry_rows(keys), returning=["id", "key"])
        custody, fees = ledger.firm_account(Purpose.CUSTODY), ledger.firm_account(Purpose.FEES)
        now = timezone.now()
        rows_insert(Posting, ["entry", "account", "asset", "amount", "created_at"],
                    [(pk, account.pk, "USD", amount, now) for pk, _ in returned
                     for account, amount in ((custody, Decimal("1.25")), (fees, Decimal("-1.25")))])
    assert [key for _, key in returned] == keys
    assert [pk for pk, _ in returned] == sorted(pk for pk, _ in returned)
    stored = dict(JournalEntry.objects.filter(key__in=keys).values_list("key", "id"))
    assert stored == {key: pk for pk, key in returned}
    assert Posting.objects.filter(entry_id__in=stored.values()).count() == 100


def test_insert_of_nothing_writes_nothing():
    assert rows_insert(JournalEntry, ENTRY_FIELDS, [], returning=["id"]) == []


def test_update_sets_each_row_its_own_values_and_counts_the_rows():
    account = ledger.client_ledger_account_create(client=ClientAccountFactory())
    balances = [Balance.objects.create(account=account, asset=asset) for asset in Asset.objects.all()[:2]]
    now = timezone.now()
    updated = rows_update(Balance, ["amount", "held", "updated_at"],
                          [(balances[0].pk, Decimal("10.5"), Decimal("2"), now),
                           (balances[1].pk, Decimal("0.00000001"), Decimal("0"), now)])
    assert updated == 2
    assert Balance.objects.get(pk=balances[0].pk).amount == Decimal("10.5")
    assert Balance.objects.get(pk=balances[0].pk).held == Decimal("2")
    assert Balance.objects.get(pk=balances[1].pk).amount == Decimal("0.00000001")


def test_update_of_unknown_ids_changes_nothing():
    assert rows_update(Balance, ["held"], [(-1, Decimal("1"))]) == 0
