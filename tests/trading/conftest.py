import pytest

from accounts.models import Role
from tests.api import api_client_for
from tests.factories import MarketFactory, fund
from tests.trading.quote_desk import clock, desk  # noqa: F401 - fixtures of the quote tests


@pytest.fixture
def market():
    return MarketFactory()


@pytest.fixture
def alice():
    """An API client of a trader whose account holds 50,000 USD."""
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "USD", "50000")
    return client
