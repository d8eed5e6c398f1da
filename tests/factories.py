"""factory_boy factories and domain helpers shared by every app's tests."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from accounts.models import AccountStatus, ClientAccount, KycStatus, Membership, Role, WithdrawalDestination
from ledger import services as ledger
from ledger.models import Balance, LedgerAccount, Purpose
from trading.models import Market

_deposit_seq = itertools.count(1)
FIAT = {"USD"}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create:
            instance.save()


class StaffFactory(UserFactory):
    is_staff = True


class ClientAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClientAccount
        skip_postgeneration_save = True

    legal_name = factory.Sequence(lambda n: f"Client {n} Ltd")
    status = AccountStatus.ACTIVE
    kyc_status = KycStatus.APPROVED

    @factory.post_generation
    def ledger_account(obj, create, extracted, **kwargs):
        if create:
            ledger.client_ledger_account_create(client=obj)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    account = factory.SubFactory(ClientAccountFactory)
    role = Role.TRADER


class MarketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Market
        django_get_or_create = ("symbol",)

    symbol = "BTC-USD"
    base_id = "BTC"
    quote_id = "USD"
    tick_size = Decimal("0.01")
    lot_size = Decimal("0.00001")
    min_size = Decimal("0.00001")
    max_size = Decimal("1000")
    maker_fee_rate = Decimal("0.001")
    taker_fee_rate = Decimal("0.002")


def ledger_account_of(account) -> LedgerAccount:
    if isinstance(account, LedgerAccount):
        return account
    return LedgerAccount.objects.get(client=account)


def fund(account, asset: str, amount):
    """Credit a client as a completed deposit would: debit custody, credit the client. Returns the entry."""
    amount = Decimal(str(amount))
    return ledger.entry_post(
        key=f"test-deposit:{next(_deposit_seq)}:{ledger_account_of(account).pk}",
        kind="deposit",
        legs=[
            ledger.debit(ledger.firm_account(Purpose.CUSTODY), asset, amount),
            ledger.credit(ledger_account_of(account), asset, amount),
        ],
    )


def deposit_reference(asset: str) -> dict:
    """The reference a deposit of ``asset`` names: a bank reference for fiat, a transaction hash for crypto."""
    n = next(_deposit_seq)
    return {"bank_reference": f"BANK-{n}"} if asset in FIAT else {"tx_hash": f"0x{n:064x}"}


def allow_destination(account, asset: str, address: str, *, cooled_off: bool = True) -> WithdrawalDestination:
    """Put ``address`` on the account's withdrawal address book for ``asset``, its cool-off already over (or
    not: ``cooled_off=False``). Setting up state, as ``fund`` does; the service is tested on its own."""
    now = timezone.now()
    return WithdrawalDestination.objects.get_or_create(
        account=account, asset_id=asset, address=address, removed_at=None,
        defaults={"usable_from": now - timedelta(seconds=1) if cooled_off else now + timedelta(days=1)},
    )[0]


def assert_balance(account, asset: str, total, held=None) -> None:
    row = Balance.objects.filter(account=ledger_account_of(account), asset_id=asset).first()
    actual_total = row.amount if row else Decimal(0)
    actual_held = row.held if row else Decimal(0)
    assert actual_total == Decimal(str(total)), f"{asset} total {actual_total} != {total}"
    if held is not None:
        assert actual_held == Decimal(str(held)), f"{asset} held {actual_held} != {held}"


def assert_secret_stored_nowhere(secret: str) -> None:
    """No column of any table holds the secret (or its random part) in clear."""
    random_part = secret.partition(".")[2]
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb')
        """)
        columns = cursor.fetchall()
        for table, column in columns:
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{random_part}%"])
            assert cursor.fetchone()[0] == 0, (table, column)
