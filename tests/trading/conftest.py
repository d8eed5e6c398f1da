import pytest

from accounts.models import Role
from tests.api import api_client_for
from tests.factories import MarketFactory, fund
from trading.books import books_clear


@pytest.fixture(autouse=True)
def _fresh_books():
    """Each test starts with no in-memory books, as a freshly started worker would."""
    books_clear()
    yield
    books_clear()


@pytest.fixture
def market():
    return MarketFactory()


@pytest.fixture
def alice():
    """An API client of a trader whose account holds 50,000 USD."""
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "USD", "50000")
    return client
