"""Rate limiting of the client API. Every request counts against three budgets: its credential (the API key;
the user for session and token logins; the IP for anonymous requests), its client account (so self-service
keys do not multiply the limit) and its IP address. The rates are ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``
``api_key``, ``account`` and ``ip`` (env ``API_KEY_THROTTLE_RATE``, ``API_ACCOUNT_THROTTLE_RATE``,
``API_IP_THROTTLE_RATE``), read at request time; requests without a credential to the public market data count
against one more, ``public_ip`` (env ``API_PUBLIC_IP_THROTTLE_RATE``, ``PublicReadRateThrottle``). Counters live
in the default cache (Redis when configured, so every web process shares them).

Failed authentications are counted per IP and per API-key prefix (``AuthFailureGuard``, rates
``auth_failure_ip`` and ``auth_failure_key``): past either limit every attempt is a 429
``authentication_throttled`` until the window moves on, whether its credential is right or not.

The limit is DRF's sliding window: a request is refused when ``num_requests`` accepted requests fall in the
last ``duration`` seconds, and a refused request does not count. DRF keeps that window as a pickled list of
timestamps that each request reads and writes back whole (two round trips, and a list as long as the rate
allows). On a Redis cache the window is a sorted set updated by one script instead: one round trip, and
concurrent requests of one key no longer overwrite each other's timestamps. Other caches (tests,
development) use DRF's code.

A request weighs 1 unless its view says otherwise (``throttle_weight(request)``, like Binance's request weight): a
batch of N orders counts as N requests in every window, and is refused whole when N do not fit.
"""

from __future__ import annotations

import logging
import secrets
import time

import redis
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from accounts.errors import Code
from accounts.models import ApiKey
from audit.context import client_ip

logger = logging.getLogger(__name__)

# KEYS: one sorted set per window; ARGV: now, a unique member, the request's weight, then (duration, num_requests)
# per window. The request is accepted (and counted ``weight`` times in every window) only if every window has room
# for it: returns {1}; else {0, the first full window's position (1-based), requests in it, its oldest one's time}.
SLIDING_WINDOW_SCRIPT = """
local now, weight = tonumber(ARGV[1]), tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  local duration, limit = tonumber(ARGV[2 * i + 2]), tonumber(ARGV[2 * i + 3])
  redis.call("ZREMRANGEBYSCORE", key, "-inf", now - duration)
  local count = redis.call("ZCARD", key)
  if count + weight > limit then
    local oldest = redis.call("ZRANGE", key, 0, 0, "WITHSCORES")
    return {0, i, count, oldest[2] or false}
  end
end
for i, key in ipairs(KEYS) do
  for n = 1, weight do
    redis.call("ZADD", key, now, ARGV[2] .. ":" .. n)
  end
  redis.call("EXPIRE", key, math.ceil(tonumber(ARGV[2 * i + 2])))
end
return {1}
"""


def request_weight(request, view) -> int:
    """How many requests this one counts as: the view's ``throttle_weight(request)``, else 1."""
    weigh = getattr(view, "throttle_weight", None)
    return max(1, weigh(request)) if weigh is not None else 1


def _redis_windows(backend: RedisCache, throttles: list[SlidingWindowThrottle], now: float, weight: int):
    """Run the sliding-window script over the throttles' windows (each with its ``key`` set): None if the
    request is accepted, else the throttle whose window is full, its ``window`` set for ``wait()``."""
    keys = [backend.make_and_validate_key(f"{t.key}:window") for t in throttles]  # not DRF's keys: another type
    args = [now, secrets.token_hex(8), weight]
    for throttle in throttles:
        throttle.now = now
        args += [throttle.duration, throttle.num_requests]
    client = backend._cache.get_client(keys[0], write=True)  # the cache's own connection pool
    try:
        result = client.register_script(SLIDING_WINDOW_SCRIPT)(keys=keys, args=args)
    except redis.RedisError:
        # Fail open: a Redis outage must not stop trading (README "Operations", failover). The limit is a
        # guard against runaway clients, not a safety property; the database still protects the money.
        logger.warning("rate limit not applied: Redis unavailable")
        return None
    if result[0] == 1:
        return None
    refused = throttles[int(result[1]) - 1]
    refused.window = (int(result[2]), float(result[3]) if result[3] else None)
    return refused


class SlidingWindowThrottle(SimpleRateThrottle):
    """DRF's sliding window, kept in one Redis script on a Redis cache. Subclasses name the ``scope`` (its rate)
    and what a request is counted as (``ident``; None: not counted)."""

    scope: str
    window: tuple[int, float | None] | None = None  # Redis: (requests in the window, oldest time) on refusal
    weight = 1  # how many requests the current one counts as (``request_weight``)

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
        self.weight = request_weight(request, view)
        backend = caches[DEFAULT_CACHE_ALIAS]  # what DRF's ``self.cache`` stands for
        if self.rate is None or not isinstance(backend, RedisCache):
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        return _redis_windows(backend, [self], self.timer(), self.weight) is None

    def throttle_success(self):
        """DRF's window (other caches): DRF found room for one request; a heavier one needs room for its weight,
        and is counted that many times."""
        if len(self.history) + self.weight > self.num_requests:
            return self.throttle_failure()
        self.history[:0] = [self.now] * (self.weight - 1)
        return super().throttle_success()

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


class PublicIpRateThrottle(SlidingWindowThrottle):
    """One budget per IP address for requests without a credential (public market data); requests with one are
    not counted here."""

    scope = "public_ip"

    def ident(self, request) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return f"ip:{self.get_ident(request)}"


class ClientRateThrottle(BaseThrottle):
    """The client API's throttle: the credential's, the account's and the IP's windows together. On Redis one
    script checks and counts all three (one round trip; a request is counted only when all three accept it);
    on other caches each is DRF's own window."""

    windows = (ApiKeyRateThrottle, AccountRateThrottle, IpRateThrottle)

    def __init__(self):
        self.refused: list[SlidingWindowThrottle] = []

    def allow_request(self, request, view):
        throttles = [window() for window in self.windows]
        backend = caches[DEFAULT_CACHE_ALIAS]
        if not isinstance(backend, RedisCache):
            self.refused = [t for t in throttles if not t.allow_request(request, view)]
            return not self.refused
        counted = []
        for throttle in throttles:
            throttle.key = throttle.get_cache_key(request, view) if throttle.rate is not None else None
            if throttle.key is not None:
                counted.append(throttle)
        weight = request_weight(request, view)
        refused = _redis_windows(backend, counted, throttles[0].timer(), weight) if counted else None
        self.refused = [refused] if refused is not None else []
        return refused is None

    def wait(self):
        waits = [t.wait() for t in self.refused]
        return max((w for w in waits if w is not None), default=None)


class PublicReadRateThrottle(ClientRateThrottle):
    """The throttle of endpoints anyone may read (market data): the client API's windows, and for a request
    without a credential also the stricter ``public_ip`` window of its IP address."""

    windows = (*ClientRateThrottle.windows, PublicIpRateThrottle)


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
        try:
            counts = cache.get_many([key for key, *_ in windows])
        except redis.RedisError:  # fail open, as the rate limits do: the credential is still verified
            logger.warning("failed-authentication guard not applied: Redis unavailable")
            return
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
        try:
            self._count_failure()
        except redis.RedisError:
            logger.warning("failed authentication not counted: Redis unavailable")

    def _count_failure(self) -> None:
        for key, _, duration, _ in self._windows():
            if cache.add(key, 1, timeout=duration + 1):
                continue
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=duration + 1)
