"""A client generated from the served OpenAPI schema works: generated, imported module by module, and used
against a live server to list markets, read balances, place, read back and cancel an order, and request a
withdrawal. A schema change that breaks generated clients (issue 19: every POST offered as JSON, form and
multipart made openapi-python-client emit modules failing at import) fails here.

The live server is pytest-django's ``live_server`` (a threaded WSGI server on this test database), on an
OS-assigned port unless ``DJANGO_LIVE_TEST_SERVER_ADDRESS`` (e.g. ``127.0.0.1:18210``) says otherwise.
Generation and use take a few seconds.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from accounts import services
from accounts.models import Role
from tests.factories import MarketFactory, MembershipFactory, allow_destination, fund

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "brokerage_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
# Operations a client is expected to find, by module: a rename or a lost operation fails here, as it would break
# every client generated before.
EXPECTED_MODULES = {
    "account.v1_account_retrieve", "api_keys.v1_api_keys_create", "api_keys.v1_api_keys_list",
    "api_keys.v1_api_keys_retrieve", "api_keys.v1_api_keys_revoke_create", "audit_log.v1_audit_log_list",
    "balances.v1_balances_list", "deposits.v1_deposits_create", "deposits.v1_deposits_list",
    "deposits.v1_deposits_retrieve", "fills.v1_fills_list", "markets.v1_markets_book_retrieve",
    "markets.v1_markets_candles_list",
    "markets.v1_markets_list", "markets.v1_markets_retrieve", "markets.v1_markets_ticker_retrieve",
    "markets.v1_markets_trades_list", "orders.v1_orders_cancel_all_create", "orders.v1_orders_cancel_create",
    "orders.v1_orders_create", "orders.v1_orders_destroy", "orders.v1_orders_fills_list", "orders.v1_orders_list",
    "orders.v1_orders_partial_update", "orders.v1_orders_retrieve", "report_jobs.v1_report_jobs_create",
    "report_jobs.v1_report_jobs_download_retrieve", "report_jobs.v1_report_jobs_list",
    "report_jobs.v1_report_jobs_retrieve", "reports.v1_reports_list", "reports.v1_reports_retrieve",
    "statement.v1_statement_list", "withdrawals.v1_withdrawals_cancel_create", "withdrawals.v1_withdrawals_create",
    "withdrawals.v1_withdrawals_list", "withdrawals.v1_withdrawals_retrieve",
    "events.v1_events_retrieve", "orders.v1_orders_by_client_id_retrieve", "webhooks.v1_webhooks_list",
    "webhooks.v1_webhooks_create", "webhooks.v1_webhooks_retrieve", "webhooks.v1_webhooks_destroy",
    "webhooks.v1_webhooks_attempts_list", "webhooks.v1_webhooks_enable_create", "webhooks.v1_webhooks_ping_create",
    "conversions.v1_conversions_list", "conversions.v1_conversions_create", "conversions.v1_conversions_retrieve",
    "prices.v1_prices_list", "quotes.v1_quotes_list", "quotes.v1_quotes_create", "quotes.v1_quotes_retrieve",
    "quotes.v1_quotes_execute_create", "withdrawal_destinations.v1_withdrawal_destinations_list",
    "withdrawal_destinations.v1_withdrawal_destinations_create",
    "withdrawal_destinations.v1_withdrawal_destinations_remove_create",
    "orders.v1_orders_cancel_after_create", "kill_switch.v1_kill_switch_retrieve", "kill_switch.v1_kill_switch_create",
    "fees.v1_fees_retrieve", "orders.v1_orders_batch_create",
}


@pytest.fixture
def generated_client(live_server, tmp_path, monkeypatch):
    """Generate the client package from the schema the live server serves, and put it on sys.path."""
    with urllib.request.urlopen(f"{live_server.url}/api/schema/?format=json", timeout=30) as response:
        schema = json.load(response)
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    (tmp_path / "config.yaml").write_text("post_hooks: []\n")  # no formatter run: faster, and not needed
    result = subprocess.run(
        [str(GENERATOR), "generate", "--path", "schema.json", "--meta", "none", "--output-path", PACKAGE,
         "--config", "config.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # The generator still writes a client when it skips an operation or a model; that is a broken client too.
    assert "Warning" not in output and "Error" not in output, output
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / PACKAGE
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def _modules(package_dir: Path) -> list[str]:
    return sorted(
        ".".join((PACKAGE, *path.relative_to(package_dir).with_suffix("").parts)).removesuffix(".__init__")
        for path in package_dir.rglob("*.py")
    )


@pytest.fixture
def desk(live_server):
    """A funded trading account with an API key, and a market."""
    MarketFactory(symbol="BTC-USD")
    membership = MembershipFactory(role=Role.ADMIN)
    fund(membership.account, "USD", "50000.00")
    allow_destination(membership.account, "USD", "GB33BUKB20201555555555")
    _, secret = services.api_key_create(user=membership.user, name="generated-client",
                                        scopes=["read", "trade", "transfer"])
    return membership.account, secret


def test_a_generated_client_imports_and_trades_against_a_live_server(generated_client, live_server, desk):
    failures = {}
    for module in _modules(generated_client):
        try:
            importlib.import_module(module)
        except Exception as exc:  # every failure, listed together
            failures[module] = f"{type(exc).__name__}: {exc}"
    assert not failures, failures
    api_modules = {m.removeprefix(f"{PACKAGE}.api.") for m in _modules(generated_client) if ".api." in m}
    api_modules = {m for m in api_modules if "." in m}  # operations, not the tag packages
    assert api_modules == EXPECTED_MODULES

    client_module = importlib.import_module(PACKAGE)
    models = importlib.import_module(f"{PACKAGE}.models")
    api = lambda name: importlib.import_module(f"{PACKAGE}.api.{name}")  # noqa: E731
    account, secret = desk
    client = client_module.AuthenticatedClient(base_url=live_server.url, token=secret, prefix="ApiKey",
                                               raise_on_unexpected_status=True)

    markets = api("markets.v1_markets_list").sync(client=client)
    assert [m.symbol for m in markets] == ["BTC-USD"]
    # Market data is public: a client without a credential reads it (candles: a cursor page, none yet).
    anonymous = client_module.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    assert [m.symbol for m in api("markets.v1_markets_list").sync(client=anonymous)] == ["BTC-USD"]
    candles = api("markets.v1_markets_candles_list").sync("BTC-USD", client=anonymous,
                                                           granularity=models.V1MarketsCandlesListGranularity(60))
    assert candles.results == [] and not candles.next_

    balances = {b.asset: b for b in api("balances.v1_balances_list").sync(client=client)}
    assert (balances["USD"].total, balances["USD"].available) == ("50000.00", "50000.00")

    placed = api("orders.v1_orders_create").sync(client=client, body=models.OrderCreateRequest(
        market="BTC-USD", side=models.SideEnum.BUY, size="0.01000", price="20000.00",
        client_order_id="generated-1",
    ))
    assert isinstance(placed, models.Order), placed
    assert (placed.market, placed.side, placed.size, placed.price) == ("BTC-USD", models.SideEnum.BUY,
                                                                      "0.01000000", "20000.00")
    read_back = api("orders.v1_orders_retrieve").sync(placed.id, client=client)
    assert (read_back.id, read_back.client_order_id) == (placed.id, "generated-1")
    listed = api("orders.v1_orders_list").sync(client=client, market="BTC-USD")
    assert [o.id for o in listed.results] == [placed.id]

    cancelled = api("orders.v1_orders_cancel_create").sync(placed.id, client=client)
    assert cancelled.status == models.OrderStatusEnum.CANCELLED
    # A batch: each order answered on its own (a replay of the order above, and a refusal), nothing new placed.
    batch = api("orders.v1_orders_batch_create").sync(client=client, body=models.OrderBatchRequest(orders=[
        models.OrderBatchItemRequest(market="BTC-USD", side=models.SideEnum.BUY, size="0.01000", price="20000.00",
                                     client_order_id="generated-1"),
        models.OrderBatchItemRequest(market="BTC-USD", side=models.SideEnum.BUY, size="0.01", price="20000.001"),
    ]))
    assert [result.status for result in batch.results] == [201, 400]
    assert (batch.results[0].order.id, batch.results[0].order.status) == (placed.id,
                                                                        models.OrderStatusEnum.CANCELLED)
    assert (batch.results[1].error.code, batch.results[1].error.field) == ("invalid_tick", "price")

    withdrawal = api("withdrawals.v1_withdrawals_create").sync(
        client=client, idempotency_key="generated-w-1",
        body=models.FundingCreateRequest(asset="USD", amount="100.00", bank_reference="GB33BUKB20201555555555"),
    )
    assert isinstance(withdrawal, models.Withdrawal), withdrawal
    assert (withdrawal.amount, withdrawal.status) == ("100.00", models.FundingStatusEnum.REQUESTED)
    usd = {b.asset: b for b in api("balances.v1_balances_list").sync(client=client)}["USD"]
    assert (Decimal(usd.total), Decimal(usd.held), Decimal(usd.available)) == (
        Decimal("50000"), Decimal("100"), Decimal("49900"))

    # An error comes back as the Error model the schema documents, with its catalogued code.
    refused = api("withdrawals.v1_withdrawals_create").sync(
        client=client, idempotency_key="generated-w-2",
        body=models.FundingCreateRequest(asset="USD", amount="100.00"),
    )
    assert isinstance(refused, models.Error) and (refused.code, refused.field) == ("destination_required",
                                                                                  "bank_reference")
