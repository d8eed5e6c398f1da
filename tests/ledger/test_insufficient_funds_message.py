"""``insufficient_funds`` names the available amount as the API shows amounts: at the asset's precision, not with
the 18 decimal places the database stores."""

from decimal import Decimal

import pytest

from accounts.models import Role
from ledger import services as ledger
from ledger.errors import InsufficientFunds
from ledger.models import Purpose
from ledger.money import at_precision
from tests.api import api_client_for
from tests.factories import ClientAccountFactory, MarketFactory, allow_destination, fund, ledger_account_of

pytestmark = pytest.mark.django_db


def test_a_withdrawal_over_the_balance_names_the_available_amount_at_the_assets_precision():
    client = api_client_for(role=Role.ADMIN)
    fund(client.account, "USD", "5000")
    fund(client.account, "BTC", "0.5")
    allow_destination(client.account, "USD", "GB00X")
    allow_destination(client.account, "BTC", "bc1q")
    usd = client.post("/api/v1/withdrawals/", {"asset": "USD", "amount": "6000.00", "bank_reference": "GB00X"},
                      format="json", HTTP_IDEMPOTENCY_KEY="w-usd").json()
    assert (usd["code"], usd["message"]) == ("insufficient_funds",
                                             "Insufficient available USD: 5000.00 available, 6000.00 needed.")
    btc = client.post("/api/v1/withdrawals/", {"asset": "BTC", "amount": "0.75", "blockchain_address": "bc1q"},
                      format="json", HTTP_IDEMPOTENCY_KEY="w-btc").json()
    assert btc["message"] == "Insufficient available BTC: 0.50000000 available, 0.75000000 needed."


def test_an_order_over_the_balance_says_the_same():
    MarketFactory()
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "USD", "100")
    body = client.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "1", "price": "100.00"},
                       format="json").json()
    assert body["code"] == "insufficient_funds"
    assert "100.00 available" in body["message"] and "000000000" not in body["message"]


def test_a_posting_that_would_overdraw_names_what_it_would_leave():
    account = ledger_account_of(ClientAccountFactory())
    fund(account, "USD", "10")
    with pytest.raises(InsufficientFunds) as refused:
        ledger.entry_post(key="overdraw", kind="test", legs=[
            ledger.debit(account, "USD", Decimal("10.50")),
            ledger.credit(ledger.firm_account(Purpose.CUSTODY), "USD", Decimal("10.50")),
        ])
    assert refused.value.message.endswith("the entry would leave -0.50 available.")


@pytest.mark.parametrize("amount, precision, text", [
    ("9000.000000000000000000", 2, "9000.00"), ("0", 8, "0.00000000"), ("-0.5", 2, "-0.50"),
    ("1.005", 2, "1.005"),  # not exact at the precision: shown exactly, never rounded
])
def test_at_precision(amount, precision, text):
    assert at_precision(Decimal(amount), precision) == text
