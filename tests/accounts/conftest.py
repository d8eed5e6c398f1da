from decimal import Decimal

import pytest

from accounts import services
from accounts.models import Scope
from tests.factories import (
    ClientAccountFactory,
    MembershipFactory,
    StaffFactory,
    allow_destination,
    deposit_reference,
)


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
def kyc_officer():
    """A compliance officer: approves KYC (a second person to whoever opened the account)."""
    from django.contrib.auth.models import Group

    from console.roles import COMPLIANCE

    officer = StaffFactory(username="compliance-carol")
    officer.groups.add(Group.objects.get(name=COMPLIANCE))
    return officer


@pytest.fixture
def funded(account, ops, ops2):
    """``account`` with completed deposits of 100,000 USD and 10 BTC (approved by ops, completed by ops2), and
    the destinations these tests withdraw to on its address book, past their cool-off."""
    for asset, amount in (("USD", "100000"), ("BTC", "10")):
        deposit = services.deposit_request(account=account, asset=asset, amount=amount, acting_user=None,
                                           **deposit_reference(asset))
        services.deposit_approve(deposit=deposit, acting_user=ops)
        services.deposit_complete(deposit=deposit, acting_user=ops2)
    for asset, address in LISTED_DESTINATIONS:
        allow_destination(account, asset, address)
    return account


LISTED_DESTINATIONS = [("BTC", "bc1qexample"), ("BTC", "bc1q"), ("BTC", "bc1"), ("USD", "DE89"),
                       ("USD", "DE89 3704"), ("USD", "IBAN X")]


ALL_SCOPES = list(Scope.values)
