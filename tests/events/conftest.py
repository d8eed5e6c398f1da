from tests.trading.conftest import alice, market  # noqa: F401 - the trading tests' fixtures, shared
