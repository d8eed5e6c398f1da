"""Wake-ups of the event log over Redis pub/sub. Messages carry no data, only "look again": the database is the
record, so a lost message costs a poll interval, never an event.

- ``events:written``: a writer committed events (published after commit); the sequencer wakes.
- ``events:sequenced``: the sequencer committed a pass (its head ``seq``); relays wake.
- ``events:account:<id>`` / ``events:public``: a pass numbered events of that account / public events;
  long-polls of that account wake.

Without Redis (embedded default) nothing is published and every waiter polls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from functools import cache

import redis
from django.conf import settings

from core.db import on_commit_once

logger = logging.getLogger(__name__)

WRITTEN = "events:written"
SEQUENCED = "events:sequenced"
PUBLIC = "events:public"
POLL_SECONDS = 0.25  # how often a waiter looks again without Redis


def account_channel(account_id: int) -> str:
    return f"events:account:{account_id}"


@cache
def _redis() -> redis.Redis | None:
    url = settings.EVENTS_REDIS_URL
    if not url:
        return None
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)


def redis_client() -> redis.Redis | None:
    return _redis()


def reset() -> None:
    """Forget the client (tests that switch Redis)."""
    _redis.cache_clear()


def _publish(pairs: Iterable[tuple[str, str]]) -> None:
    client = _redis()
    if client is None:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for channel, message in pairs:
            pipe.publish(channel, message)
        pipe.execute()
    except redis.RedisError:
        logger.warning("could not publish event wake-ups; waiters will poll", exc_info=True)


def written_on_commit() -> None:
    """After this transaction commits, wake the sequencer (robust: the events are committed whatever happens)."""
    on_commit_once("events-written", lambda: _publish([(WRITTEN, "1")]))


def sequenced(head: int, account_ids: Iterable[int], public: bool) -> None:
    """Announce a committed pass: to relays, and to the long-polls of each account it numbered events of."""
    pairs = [(SEQUENCED, str(head))] + [(account_channel(a), str(head)) for a in sorted(set(account_ids))]
    if public:
        pairs.append((PUBLIC, str(head)))
    _publish(pairs)


class Waiter:
    """Waits for a message on some channels, or polls without Redis. Holds a Redis connection while open
    (blocking on its socket, no busy loop) and never a database connection."""

    def __init__(self, channels: list[str]):
        client = _redis()
        self.pubsub = None
        if client is not None:
            try:
                self.pubsub = client.pubsub(ignore_subscribe_messages=True)
                self.pubsub.subscribe(*channels)
            except redis.RedisError:
                logger.warning("could not subscribe to %s; polling", channels, exc_info=True)
                self.pubsub = None

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds``; True if a message came (then look again), False on timeout."""
        if seconds <= 0:
            return False
        if self.pubsub is None:
            time.sleep(min(seconds, POLL_SECONDS))
            return seconds > POLL_SECONDS  # "look again" after each poll interval
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                if self.pubsub.get_message(timeout=left) is not None:
                    return True
        except redis.RedisError:
            logger.warning("lost the Redis subscription; polling", exc_info=True)
            self.close()
            time.sleep(min(max(deadline - time.monotonic(), 0), POLL_SECONDS))
            return True
        return False

    def wait_paced(self, seconds: float, *, not_before: float, stop: threading.Event) -> bool:
        """``wait``, and if a message came before ``not_before`` (``time.monotonic()``), hold on until then and take
        the messages that came meanwhile too: under load the caller looks once per interval, not once per message.
        ``stop`` cuts the hold short."""
        came = self.wait(seconds)
        if came and (hold := not_before - time.monotonic()) > 0:
            stop.wait(hold)
            self._drain()
        return came

    def _drain(self) -> None:
        if self.pubsub is None:
            return
        try:
            while self.pubsub.get_message(timeout=0) is not None:
                pass
        except redis.RedisError:  # the next wait() notices and polls
            logger.warning("lost the Redis subscription", exc_info=True)

    def close(self) -> None:
        if self.pubsub is not None:
            try:
                self.pubsub.close()
            except redis.RedisError:
                pass
            self.pubsub = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
