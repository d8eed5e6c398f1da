"""The API-key throttle decides the same on Redis (one script) as DRF's code on other caches."""

from __future__ import annotations

import os
import random
import threading
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from accounts.models import ApiKey
from accounts.throttling import ApiKeyRateThrottle

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle-equivalence"}


def redis_cache() -> dict:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    return {"BACKEND": "core.cache.RedisCache", "LOCATION": url}


def rate(value: str):
    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": value}})


def decisions(cache: dict, times: list[float], *, key_id: int,
              weights: list[int] | None = None) -> list[tuple[bool, float | None]]:
    """(allowed, wait) for a request of one key at each time, weighing ``weights`` (default 1 each)."""
    request = SimpleNamespace(auth=ApiKey(pk=key_id))
    out = []
    with override_settings(CACHES={"default": cache}):
        for now, weight in zip(times, weights or [1] * len(times), strict=True):
            throttle = ApiKeyRateThrottle()
            throttle.timer = lambda now=now: now
            allowed = throttle.allow_request(request, view=SimpleNamespace(throttle_weight=lambda _, w=weight: w))
            out.append((allowed, None if allowed else throttle.wait()))
        caches["default"].delete(f"throttle_api_key_key:{key_id}")
        caches["default"].delete(f"throttle_api_key_key:{key_id}:window")
    return out


def test_redis_and_drf_decide_alike_over_a_sliding_window():
    start = 1_700_000_000.0
    # Bursts, refusals, a window sliding past its oldest requests, and requests at the same instant.
    times = [start, start, start + 1, start + 2, start + 3, start + 10, start + 59.5, start + 60, start + 60,
             start + 61, start + 61.5, start + 62, start + 62, start + 125, start + 125.25]
    key_id = random.randrange(10**9, 2 * 10**9)
    with rate("4/min"):
        expected = decisions(LOCMEM, times, key_id=key_id)
        assert decisions(redis_cache(), times, key_id=key_id) == expected
    assert [allowed for allowed, _ in expected].count(False) >= 5  # the sequence does test refusals


def test_redis_and_drf_weigh_heavy_requests_alike():
    """A batch of N orders counts N requests, and is refused whole when N do not fit (README "Batch orders")."""
    start = 1_700_000_000.0
    times = [start, start + 1, start + 2, start + 3, start + 4, start + 60.5, start + 61, start + 62, start + 63]
    weights = [3, 3, 2, 1, 9, 5, 5, 1, 1]
    key_id = random.randrange(10**9, 2 * 10**9)
    with rate("6/min"):
        expected = decisions(LOCMEM, times, key_id=key_id, weights=weights)
        assert decisions(redis_cache(), times, key_id=key_id, weights=weights) == expected
    assert [allowed for allowed, _ in expected] == [True, True, False, False, False, False, True, True, False]


def test_a_zero_rate_refuses_everything_on_redis():
    key_id = random.randrange(10**9, 2 * 10**9)
    with rate("0/min"):
        assert decisions(redis_cache(), [1.0, 2.0], key_id=key_id) == decisions(LOCMEM, [1.0, 2.0], key_id=key_id)


def test_concurrent_requests_of_one_key_are_all_counted_on_redis():
    cache = redis_cache()
    key_id = random.randrange(10**9, 2 * 10**9)
    request = SimpleNamespace(auth=ApiKey(pk=key_id))
    results = []
    with rate("10/min"), override_settings(CACHES={"default": cache}):
        barrier = threading.Barrier(16)

        def call():
            barrier.wait()
            results.append(ApiKeyRateThrottle().allow_request(request, view=None))

        threads = [threading.Thread(target=call) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        caches["default"].delete(f"throttle_api_key_key:{key_id}:window")
    assert sorted(results) == [False] * 6 + [True] * 10
