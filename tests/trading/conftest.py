import pytest

from trading.books import books_clear


@pytest.fixture(autouse=True)
def _fresh_books():
    """Each test starts with no in-memory books, as a freshly started worker would."""
    books_clear()
    yield
    books_clear()
