"""The guarantees PostgreSQL itself enforces, exercised with raw SQL that bypasses every Python check."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.utils import timezone

from core.models import ImmutableRecordError
from ledger import services as ledger
from ledger.models import JournalEntry, Posting, Purpose
from tests.factories import ClientAccountFactory, fund, ledger_account_of

pytestmark = pytest.mark.django_db(transaction=True)
DB_ERRORS = (IntegrityError, InternalError)


def raw_entry(key: str, legs: list[tuple[int, str, str]]) -> None:
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_journalentry (key, kind, memo, content_hash, created_at) "
            "VALUES (%s, 'raw', '', '', %s) RETURNING id",
            [key, now],
        )
        entry_id = cursor.fetchone()[0]
        for account_id, asset, amount in legs:
            cursor.execute(
                "INSERT INTO ledger_posting (entry_id, account_id, asset_id, amount, created_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                [entry_id, account_id, asset, Decimal(amount), now],
            )


@pytest.fixture
def accounts():
    return ledger.firm_account(Purpose.CUSTODY), ledger_account_of(ClientAccountFactory())


def test_unbalanced_raw_sql_entry_is_rejected_at_commit(accounts):
    custody, client = accounts
    with pytest.raises(DB_ERRORS, match="does not balance"):
        raw_entry("raw:unbalanced", [(custody.pk, "BTC", "1"), (client.pk, "BTC", "-0.99999999")])
    assert not JournalEntry.objects.filter(key="raw:unbalanced").exists()


def test_balanced_raw_sql_entry_is_accepted(accounts):
    custody, client = accounts
    raw_entry("raw:balanced", [(custody.pk, "BTC", "1"), (client.pk, "BTC", "-1")])
    assert JournalEntry.objects.filter(key="raw:balanced").exists()


def test_entry_without_postings_is_rejected(accounts):
    with pytest.raises(DB_ERRORS, match="fewer than two postings"):
        raw_entry("raw:empty", [])


def test_update_of_a_posting_is_rejected_by_the_database(accounts):
    _, client = accounts
    fund(client, "BTC", "1")
    with pytest.raises(DB_ERRORS, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_posting SET amount = amount * 2")
    assert sorted(Posting.objects.values_list("amount", flat=True)) == [Decimal("-1"), Decimal("1")]


def test_delete_of_postings_and_entries_is_rejected_by_the_database(accounts):
    _, client = accounts
    fund(client, "BTC", "1")
    for table in ("ledger_posting", "ledger_journalentry"):
        with pytest.raises(DB_ERRORS, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table}")
    assert Posting.objects.count() == 2


def test_model_layer_refuses_changes(accounts):
    _, client = accounts
    fund(client, "BTC", "1")
    posting = Posting.objects.first()
    posting.amount = Decimal("5")
    with pytest.raises(ImmutableRecordError):
        posting.save()
    with pytest.raises(ImmutableRecordError):
        JournalEntry.objects.all().delete()
    with pytest.raises(ImmutableRecordError):
        Posting.objects.update(amount=Decimal("3"))


def test_client_balance_floor_is_a_database_constraint(accounts):
    _, client = accounts
    fund(client, "USD", "10")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_balance SET held = 11 WHERE account_id = %s", [client.pk])
