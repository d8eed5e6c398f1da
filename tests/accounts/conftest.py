from decimal import Decimal

import pytest

from accounts import services
from accounts.models import Scope
from tests.factories import ClientAccountFactory, MembershipFactory, StaffFactory


@pytest.fixture(autouse=True)
def four_eyes_thresholds(settings):
    """Explicit thresholds, so tests do not depend on the environment: above 5 BTC or 10,000 USD, two approvers."""
    settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS = {"USD": Decimal("10000"), "BTC": Decimal("5")}


@pytest.fixture
def account():
    return ClientAccountFactory()


@pytest.fixture
def client_admin(account):
    """An admin user of ``account``: the one who requests withdrawals."""
    return MembershipFactory(account=account, role="admin").user


@pytest.fixture
def ops():
    return StaffFactory(username="ops-alice")


@pytest.fixture
def ops2():
    return StaffFactory(username="ops-bob")


@pytest.fixture
def funded(account, ops):
    """``account`` with completed deposits of 100,000 USD and 10 BTC."""
    for asset, amount in (("USD", "100000"), ("BTC", "10")):
        deposit = services.deposit_request(account=account, asset=asset, amount=amount, acting_user=None)
        services.deposit_approve(deposit=deposit, acting_user=ops)
        services.deposit_complete(deposit=deposit, acting_user=ops)
    return account


ALL_SCOPES = list(Scope.values)
