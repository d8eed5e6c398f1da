"""Rate limiting of the client API: one budget per API key (per user for session/token logins, per IP for
anonymous requests). The rate is ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_key"]`` (env
``API_KEY_THROTTLE_RATE``), read at request time; counters live in the default cache (Redis when
configured, so every web process shares them).

The limit is DRF's sliding window: a request is refused when ``num_requests`` accepted requests fall in the
last ``duration`` seconds, and a refused request does not count. DRF keeps that window as a pickled list of
timestamps that each request reads and writes back whole (two round trips, and a list as long as the rate
allows). On a Redis cache the window is a sorted set updated by one script instead: one round trip, and
concurrent requests of one key no longer overwrite each other's timestamps. Other caches (tests,
development) use DRF's code.
"""

from __future__ import annotations

import logging
import secrets

import redis
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiKey

logger = logging.getLogger(__name__)

# KEYS[1]: the window; ARGV: now, duration, num_requests, a unique member. Returns {1} if the request is
# accepted (and counted), else {0, requests in the window, the oldest one's time}.
SLIDING_WINDOW_SCRIPT = """
local now, duration, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now - duration)
local count = redis.call("ZCARD", KEYS[1])
if count >= limit then
  local oldest = redis.call("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
  return {0, count, oldest[2] or false}
end
redis.call("ZADD", KEYS[1], now, ARGV[4])
redis.call("EXPIRE", KEYS[1], math.ceil(duration))
return {1}
"""


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"
    window: tuple[int, float | None] | None = None  # Redis: (requests in the window, oldest time) on refusal

    def get_rate(self):
        # DRF binds THROTTLE_RATES when the class is defined; reading it here honours settings changes.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if isinstance(getattr(request, "auth", None), ApiKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        backend = caches[DEFAULT_CACHE_ALIAS]  # what DRF's ``self.cache`` stands for
        if self.rate is None or not isinstance(backend, RedisCache):
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        key = backend.make_and_validate_key(f"{self.key}:window")  # not DRF's key: another value type
        client = backend._cache.get_client(key, write=True)  # the cache's own connection pool
        try:
            result = client.register_script(SLIDING_WINDOW_SCRIPT)(
                keys=[key], args=[self.now, self.duration, self.num_requests, secrets.token_hex(8)]
            )
        except redis.RedisError:
            # Fail open: a Redis outage must not stop trading (README "Operations", failover). The limit is a
            # guard against runaway clients, not a safety property; the database still protects the money.
            logger.warning("rate limit not applied: Redis unavailable")
            return True
        if result[0] == 1:
            return True
        self.window = (int(result[1]), float(result[2]) if result[2] else None)
        return self.throttle_failure()

    def wait(self):
        if self.window is None:  # DRF's window (other caches)
            return super().wait()
        requests, oldest = self.window
        # DRF's formula (SimpleRateThrottle.wait), on the window the script counted.
        remaining_duration = self.duration - (self.now - oldest) if oldest is not None else self.duration
        available_requests = self.num_requests - requests + 1
        if available_requests <= 0:
            return None
        return remaining_duration / available_requests
