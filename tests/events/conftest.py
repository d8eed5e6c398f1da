import os

import pytest

from events import wakeups
from tests.trading.conftest import alice, market  # noqa: F401 - the trading tests' fixtures, shared


@pytest.fixture
def redis_wakeups(settings):
    """The event log's wake-ups on the test Redis (``TEST_REDIS_URL``): its URL."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    settings.EVENTS_REDIS_URL = url
    wakeups.reset()
    yield url
    wakeups.reset()
