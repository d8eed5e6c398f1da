"""Django's Redis cache, with its redis-py client built once per connection pool instead of on every call.

Django's ``RedisCacheClient.get_client`` wraps its pool in a new ``redis.Redis`` for each cache operation, and
redis-py 5 and later fill a table of response callbacks (some 170 entries) in every new client: in a profile of
``POST /orders``, which checks its rate limits and failed authentications on Redis, a large share of the request.
A ``redis.Redis`` is safe to share between threads (each command takes a connection from the
pool), so one per pool serves the process.
"""

from __future__ import annotations

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}  # id of the pool -> its client

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with ``RedisCacheClient`` above."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
