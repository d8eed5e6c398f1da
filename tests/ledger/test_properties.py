"""Property test: any sequence of valid ledger operations keeps the books balanced and the balances exact."""

import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import selectors
from ledger import services as ledger
from ledger.errors import InsufficientFunds
from ledger.models import Purpose
from tests.factories import ClientAccountFactory, ledger_account_of

ASSETS = ["USD", "BTC"]
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
operation = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 2), st.sampled_from(ASSETS), amounts),
    st.tuples(st.just("withdraw"), st.integers(0, 2), st.sampled_from(ASSETS), amounts),
    st.tuples(st.just("transfer"), st.integers(0, 2), st.sampled_from(ASSETS), amounts),
    st.tuples(st.just("hold"), st.integers(0, 2), st.sampled_from(ASSETS), amounts),
    st.tuples(st.just("release"), st.integers(0, 2), st.sampled_from(ASSETS), amounts),
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=25))
def test_any_sequence_of_operations_keeps_trial_balance_zero(ops):
    clients = [ledger_account_of(ClientAccountFactory()) for _ in range(3)]
    custody = ledger.firm_account(Purpose.CUSTODY)
    expected = {(i, a): Decimal(0) for i in range(3) for a in ASSETS}
    holds = []
    run = uuid.uuid4().hex  # examples share one test transaction: keys must not repeat across examples
    for n, (kind, i, asset, amount) in enumerate(ops):
        client, other = clients[i], clients[(i + 1) % 3]
        try:
            if kind == "deposit":
                legs = [ledger.debit(custody, asset, amount), ledger.credit(client, asset, amount)]
                ledger.entry_post(key=f"p:{run}:{n}", kind=kind, legs=legs)
                expected[(i, asset)] += amount
            elif kind == "withdraw":
                legs = [ledger.debit(client, asset, amount), ledger.credit(custody, asset, amount)]
                ledger.entry_post(key=f"p:{run}:{n}", kind=kind, legs=legs)
                expected[(i, asset)] -= amount
            elif kind == "transfer":
                legs = [ledger.debit(client, asset, amount), ledger.credit(other, asset, amount)]
                ledger.entry_post(key=f"p:{run}:{n}", kind=kind, legs=legs)
                expected[(i, asset)] -= amount
                expected[((i + 1) % 3, asset)] += amount
            elif kind == "hold":
                holds.append(ledger.hold_place(key=f"h:{run}:{n}", account=client, asset=asset, amount=amount))
            elif holds:
                ledger.holds_release(holds=[holds.pop(0)])
        except InsufficientFunds:
            pass
        for asset_code, total in selectors.trial_balance().items():
            assert total == 0, asset_code

    for (i, asset), amount in expected.items():
        view = selectors.balance_get(account=clients[i], asset=asset)
        assert view.total == amount
        assert view.available >= 0
    assert selectors.balance_drift() == []
