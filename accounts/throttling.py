"""Rate limiting of the client API. Every request counts against three budgets: its credential (the API key;
the user for session and token logins; the IP for anonymous requests), its client account (so self-service
keys do not multiply the limit) and its IP address. The rates are ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``
``api_key``, ``account`` and ``ip`` (env ``API_KEY_THROTTLE_RATE``, ``API_ACCOUNT_THROTTLE_RATE``,
``API_IP_THROTTLE_RATE``), read at request time; counters live in the default cache (Redis when configured, so
every web process shares them).

Failed authentications are counted per IP and per API-key prefix (``AuthFailureGuard``, rates
``auth_failure_ip`` and ``auth_failure_key``): past either limit every attempt is a 429
``authentication_throttled`` until the window moves on, whether its credential is right or not.

The limit is DRF's sliding window: a request is refused when ``num_requests`` accepted requests fall in the
last ``duration`` seconds, and a refused request does not count. DRF keeps that window as a pickled list of
timestamps that each request reads and writes back whole (two round trips, and a list as long as the rate
allows). On a Redis cache the window is a sorted set updated by one script instead: one round trip, and
concurrent requests of one key no longer overwrite each other's timestamps. Other caches (tests,
development) use DRF's code.
"""

from __future__ import annotations

import secrets
import time

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.errors import Code
from accounts.models import ApiKey
from audit.context import client_ip

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


class SlidingWindowThrottle(SimpleRateThrottle):
    """DRF's sliding window, kept in one Redis script on a Redis cache. Subclasses name the ``scope`` (its rate)
    and what a request is counted as (``ident``; None: not counted)."""

    scope: str
    window: tuple[int, float | None] | None = None  # Redis: (requests in the window, oldest time) on refusal

    def get_rate(self):
        # DRF binds THROTTLE_RATES when the class is defined; reading it here honours settings changes.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def ident(self, request) -> str | None:
        raise NotImplementedError

    def get_ident(self, request):
        """The client's address as the audit log records it: forwarded headers are not trusted, so a client
        cannot claim a fresh address per request."""
        return client_ip(request) or "unknown"

    def get_cache_key(self, request, view):
        ident = self.ident(request)
        return None if ident is None else self.cache_format % {"scope": self.scope, "ident": ident}

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
        result = client.register_script(SLIDING_WINDOW_SCRIPT)(
            keys=[key], args=[self.now, self.duration, self.num_requests, secrets.token_hex(8)]
        )
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


class ApiKeyRateThrottle(SlidingWindowThrottle):
    """One budget per credential: the API key, else the logged-in user, else the IP."""

    scope = "api_key"

    def ident(self, request) -> str:
        if isinstance(getattr(request, "auth", None), ApiKey):
            return f"key:{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{self.get_ident(request)}"


class AccountRateThrottle(SlidingWindowThrottle):
    """One budget per client account, whichever of its keys or users the request comes with."""

    scope = "account"

    def ident(self, request) -> str | None:
        auth = getattr(request, "auth", None)
        if isinstance(auth, ApiKey):
            return f"account:{auth.account_id}"
        user = getattr(request, "user", None)
        membership = getattr(user, "membership", None) if user is not None and user.is_authenticated else None
        return f"account:{membership.account_id}" if membership is not None else None


class IpRateThrottle(SlidingWindowThrottle):
    """One budget per client IP address, whoever it authenticates as."""

    scope = "ip"

    def ident(self, request) -> str:
        return f"ip:{self.get_ident(request)}"


class AuthFailureGuard:
    """Counts failed authentications per IP and per API-key prefix in fixed windows (``cache.incr``: atomic on
    Redis) and refuses every attempt of an IP or prefix over its limit with a 429 ``authentication_throttled``.

    ``check`` runs before a credential is verified (one cache round trip); ``failed`` records a failure."""

    scopes = {"ip": "auth_failure_ip", "key": "auth_failure_key"}

    def __init__(self, request, *, prefix: str | None):
        self.idents = {"ip": client_ip(request) or "unknown"}
        if prefix:
            self.idents["key"] = prefix[:32]
        self.now = time.time()

    def _windows(self):
        """(cache key, limit, seconds left in the window) per counted ident with a rate."""
        for kind, ident in self.idents.items():
            rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scopes[kind])
            if not rate:
                continue
            limit, duration = SimpleRateThrottle.parse_rate(None, rate)
            bucket = int(self.now // duration)
            yield (f"authfail:{kind}:{ident}:{duration}:{bucket}", limit, duration,
                   (bucket + 1) * duration - self.now)

    def check(self) -> None:
        windows = list(self._windows())
        if not windows:
            return
        counts = cache.get_many([key for key, *_ in windows])
        waits = [left for key, limit, _, left in windows if counts.get(key, 0) >= limit]
        if waits:
            raise exceptions.Throttled(wait=max(waits), detail="Too many failed authentications; try again later.",
                                       code=Code.AUTHENTICATION_THROTTLED)

    @classmethod
    def forget(cls, *, ip: str | None = None, prefix: str | None = None) -> None:
        """Clear the current windows of an IP and/or a key prefix (operations unblocking a caller)."""
        guard = cls.__new__(cls)
        guard.idents = {kind: ident for kind, ident in (("ip", ip), ("key", prefix and prefix[:32])) if ident}
        guard.now = time.time()
        cache.delete_many([key for key, *_ in guard._windows()])

    def failed(self) -> None:
        for key, _, duration, _ in self._windows():
            if cache.add(key, 1, timeout=duration + 1):
                continue
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=duration + 1)
