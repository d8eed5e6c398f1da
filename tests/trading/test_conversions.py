"""Stablecoin conversions: USD to USDP and back at exactly 1:1, no fee, one balanced entry against the firm's
inventory, idempotent, limited per client per rolling 24 hours; every refusal leaves nothing behind."""

from decimal import Decimal as D

import pytest

from accounts.errors import AccountNotOperational, LimitExceeded
from audit.models import AuditLog
from ledger.errors import IdempotencyConflict, InsufficientFunds, InvalidAmount
from ledger.models import Balance, JournalEntry, Posting
from ledger.selectors import trial_balance
from tests.factories import assert_balance
from tests.trading.quote_desk import books_snapshot, client_with, inventory, inventory_fund, limits_set
from trading.errors import ConversionUnsupported, ExposureLimitExceeded
from trading.models import Conversion, ConversionLimit
from trading.services import conversions

pytestmark = pytest.mark.django_db


@pytest.fixture
def stable_desk(db):
    """The firm holds 50,000 USD and 50,000 USDP of inventory, may go long up to 10,000,000 of each."""
    for asset in ("USD", "USDP"):
        limits_set(asset, max_long="10000000")
        inventory_fund(asset, "50000")


def convert(account, amount, from_asset="USD", to_asset="USDP", key="c-1"):
    return conversions.conversion_create(account=account, from_asset=from_asset, to_asset=to_asset,
                                         amount=D(amount), idempotency_key=key, acting_user=None)


def test_usd_to_usdp_is_exactly_one_to_one_in_one_balanced_entry(stable_desk, clock):
    alice = client_with(USD="1000")
    conversion = convert(alice, "250.75")

    assert_balance(alice, "USD", "749.25")
    assert_balance(alice, "USDP", "250.75")
    assert (inventory("USD"), inventory("USDP")) == (D("50250.75"), D("49749.25"))
    entry = JournalEntry.objects.get(kind="conversion")
    assert entry.key == f"conversion:{conversion.pk}" and conversion.entry == entry
    postings = sorted((p.account.code[:6], p.asset_id, p.amount) for p in Posting.objects.filter(entry=entry)
                      .select_related("account"))
    assert postings == [("client", "USD", D("250.75")), ("client", "USDP", D("-250.75")),
                        ("firm:i", "USD", D("-250.75")), ("firm:i", "USDP", D("250.75"))]
    # value conserved: the client's USD + USDP and the firm's inventory in both are unchanged in sum
    assert alice_total(alice) == D("1000") and inventory("USD") + inventory("USDP") == D("100000")
    assert all(total == 0 for total in trial_balance().values())
    assert AuditLog.objects.get(action="conversion.create").after["amount"] == "250.75"


def alice_total(account) -> D:
    return sum(Balance.objects.filter(account__client=account, asset_id__in=["USD", "USDP"])
               .values_list("amount", flat=True), D(0))


def test_usdp_back_to_usd(stable_desk, clock):
    bob = client_with(USDP="10.5")
    convert(bob, "10.50", from_asset="USDP", to_asset="USD")
    assert_balance(bob, "USDP", "0")
    assert_balance(bob, "USD", "10.50")


def test_the_same_key_replays_and_other_content_conflicts(stable_desk, clock):
    alice = client_with(USD="1000")
    first = convert(alice, "100", key="k")
    before = books_snapshot()
    assert convert(alice, "100", key="k").pk == first.pk
    assert books_snapshot() == before
    with pytest.raises(IdempotencyConflict):
        convert(alice, "101", key="k")
    assert books_snapshot() == before and Conversion.objects.count() == 1


def test_daily_limit_per_client_over_a_rolling_day(stable_desk, clock, settings):
    settings.CONVERSION_DAILY_LIMIT = D("1000")
    alice = client_with(USD="5000")
    convert(alice, "600", key="a")
    clock.advance(hours=12)
    before = books_snapshot()
    with pytest.raises(LimitExceeded) as refused:
        convert(alice, "400.01", key="b")
    assert refused.value.code == "daily_limit_exceeded" and books_snapshot() == before
    convert(alice, "400", key="c")  # exactly the limit
    clock.advance(hours=12)  # the first conversion is exactly 24 hours old: still in the window
    with pytest.raises(LimitExceeded):
        convert(alice, "1", key="d")
    clock.advance(microseconds=1)  # now it is out
    convert(alice, "600", key="d")
    ConversionLimit.objects.create(account=alice, daily_limit=D("5000"))  # operations raise this client's limit
    convert(alice, "2000", key="e")


def test_refusals_leave_nothing_behind(stable_desk, clock):
    alice = client_with(USD="100", BTC="1")
    before = books_snapshot()
    refusals = [
        (lambda: convert(alice, "100.01"), InsufficientFunds, "insufficient_funds"),
        (lambda: convert(alice, "0.5", from_asset="BTC", to_asset="USD"), ConversionUnsupported,
         "conversion_unsupported"),
        (lambda: convert(alice, "1.001"), InvalidAmount, "too_precise"),  # USDP has 6 places, USD only 2
        (lambda: convert(alice, "0"), InvalidAmount, "not_positive"),
    ]
    for call, error, code in refusals:
        with pytest.raises(error) as refused:
            call()
        assert refused.value.code == code
    assert books_snapshot() == before and Conversion.objects.count() == 0


def test_the_firm_cannot_deliver_more_than_its_inventory(stable_desk, clock):
    rich = client_with(USD="60000")
    before = books_snapshot()
    with pytest.raises(ExposureLimitExceeded, match="USDP position would be -10000"):
        convert(rich, "60000")
    assert books_snapshot() == before
    limits_set("USDP", max_long="10000000", max_short="10000")  # operations allow a short of 10,000
    convert(rich, "60000", key="c-2")
    assert inventory("USDP") == D("-10000")


def test_a_frozen_account_cannot_convert(stable_desk, clock):
    alice = client_with(USD="100")
    alice.status = "frozen"
    alice.save()
    with pytest.raises(AccountNotOperational):
        convert(alice, "1")
