from tests.trading.conftest import _fresh_books  # noqa: F401 - every test starts with no in-memory books
