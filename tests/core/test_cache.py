"""core.cache: Django's Redis cache with one redis-py client per connection pool."""

import os
import threading

import pytest

from core.cache import RedisCache


@pytest.fixture
def cache():
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    backend = RedisCache(url, {"KEY_PREFIX": "test-core-cache"})
    yield backend
    backend.delete_many(["a", "b", "n"])


def test_every_call_gets_the_same_client_of_its_pool(cache):
    first = cache._cache.get_client("a", write=True)
    assert cache._cache.get_client("b") is first
    assert first.connection_pool is cache._cache._get_connection_pool(True)


def test_it_stores_reads_and_counts_as_djangos_cache_does(cache):
    cache.set("a", {"x": 1}, 30)
    cache.set("b", [1, 2], 30)
    assert cache.get_many(["a", "b", "missing"]) == {"a": {"x": 1}, "b": [1, 2]}
    cache.set("n", 0, 30)
    threads = [threading.Thread(target=lambda: [cache.incr("n") for _ in range(50)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.get("n") == 200  # threads share the client, each command on a pooled connection

