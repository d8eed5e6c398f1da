import pytest

from trading import wakeups


@pytest.fixture
def wakeups_lost(monkeypatch):
    """Orders wait as ``new`` until the test runs a matcher (as if every wake-up message was lost)."""
    monkeypatch.setattr(wakeups, "market_wake", lambda market_id: None)
