"""The streamer: follows the event log after commit and relays it to the channel layer (README "Streams").

Only numbered events are read (``events.selectors.stream_page``), so nothing reaches a socket that did not
commit. Per market it keeps the book as level sizes (``streams.books.LevelBook``), read once from the book of
record at a known ``sequence`` and advanced by each ``book.changed`` event, in sequence order: an event that
arrives before its predecessor (the sequencer numbers a pass in transaction-id order, not commit order) waits
for it; a ``reset`` event, or a predecessor still missing after ``GAP_SECONDS``, rereads the book and sends a
fresh snapshot. It sends:

- ``level2.<market>``: one ``l2update`` per book change (the changed levels' new sizes), or a ``snapshot``;
- ``matches.<market>`` / ``ticker.<market>``: each trade (from the taker's ``fill.created``), then the ticker;
- ``heartbeat.<market>``: every second, the market's last level 2 sequence sent;
- ``user.<account>``: every event of the account, as the pull API shows it (with its ``account_seq``).

Each message is serialised once here and fanned out by the layer; consumers only forward text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.representation import fixed, iso
from events import sql as events_sql
from events import wakeups
from events.selectors import envelope, stream_page
from events.services import head
from events.types import BOOK_CHANGED, EventType
from streams.books import LevelBook
from streams.groups import market_group, user_group
from trading import selectors as trading
from trading.models import Market
from trading.representations import exact, market_places

logger = logging.getLogger(__name__)

PAGE = 2000
GAP_SECONDS = 5.0
IDLE_SECONDS = 1.0
TICKER_SECONDS = 0.5  # at most two tickers a second per market (each reads the 24-hour volume)
LOCK_NAME = "streams"


@dataclass
class MarketStream:
    market: Market
    book: LevelBook
    pending: dict[int, dict] = field(default_factory=dict)  # sequence -> a book event waiting for its predecessor
    gap_since: float | None = None

    @property
    def symbol(self) -> str:
        return self.market.symbol

    def price(self, value: Decimal | None) -> str | None:
        return fixed(value, market_places(self.market)[2])

    def size(self, value: Decimal | None) -> str | None:
        return fixed(value, self.market.base.precision)


def layer_message(group: str, channel: str, market_id: int | None, body: dict, sequence: int | None = None) -> dict:
    return {"type": "stream.message", "group": group, "channel": channel, "market": market_id, "sequence": sequence,
            "text": orjson.dumps(body).decode()}


def sent(group: str, channel: str, market_id: int | None, body: dict, sequence: int | None = None) -> tuple[str, dict]:
    return group, layer_message(group, channel, market_id, body, sequence)


def level2_snapshot(stream: MarketStream, depth: int) -> dict:
    book = stream.book
    return {"type": "snapshot", "channel": "level2", "market": stream.symbol, "sequence": book.sequence,
            "bids": [[stream.price(p), stream.size(s)] for p, s in book.side("buy", depth)],
            "asks": [[stream.price(p), stream.size(s)] for p, s in book.side("sell", depth)]}


class Streamer:
    """Runs in its own process (``manage.py streams_relay``) with the Redis layer, or as a task of each ASGI
    process with the in-memory layer. Database work runs on one thread of its own (one connection, kept)."""

    def __init__(self, *, layer=None, exclusive: bool = False):
        self.layer = layer or get_channel_layer()
        self.exclusive = exclusive  # one streamer for all ASGI processes: hold the log's consumer lock
        self.position = 0
        self.markets: dict[int, MarketStream] = {}
        self.db = ThreadPoolExecutor(1, thread_name_prefix="streamer-db")
        self.waits = ThreadPoolExecutor(1, thread_name_prefix="streamer-wait")
        self.sent = 0
        self.ticker_due: set[int] = set()  # markets that traded since their last ticker
        self.ticker_at: dict[int, float] = {}

    async def _db(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.db, fn, *args)

    # --- the loop ---------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        beats = asyncio.create_task(self._heartbeats(stop))
        waiter = wakeups.Waiter([wakeups.SEQUENCED])
        started = False
        try:
            while not stop.is_set():
                try:
                    if not started:
                        started = await self._start(stop)
                        continue
                    read = await self.step()
                except Exception:  # the database or Redis went away: log, reconnect, reread the books, go on
                    logger.exception("streamer: a pass failed; retrying")
                    await self._db(lambda: connection.close())  # the lock, if held, went with the session
                    started = False
                    await asyncio.sleep(1)
                    continue
                if read < PAGE:
                    pause = TICKER_SECONDS if self.ticker_due else IDLE_SECONDS
                    await asyncio.get_running_loop().run_in_executor(self.waits, waiter.wait, pause)
        finally:
            beats.cancel()
            waiter.close()
            await self._db(lambda: connection.close())
            self.db.shutdown(wait=False)
            self.waits.shutdown(wait=False)

    async def _start(self, stop: asyncio.Event) -> bool:
        """Take the lock (if exclusive) and read the books. False: stopped while standing by."""
        while self.exclusive and not await self._db(events_sql.consumer_lock, LOCK_NAME):
            logger.info("streamer: another streamer holds the log; standing by")
            await asyncio.sleep(2)
            if stop.is_set():
                return False
        await self._db(self._load)
        logger.info("streamer running from seq %s, %s markets", self.position, len(self.markets))
        return True

    def _load(self) -> None:
        """The log's head first, then each book: a book change the books miss committed after them, so it is
        numbered after this head and read by the next passes. After an error the position is kept (the books are
        reread: changes they already hold are skipped by their sequence)."""
        self.position = self.position or head()
        for market in Market.objects.select_related("base", "quote"):
            self.markets[market.pk] = self._stream(market)

    @staticmethod
    def _stream(market: Market) -> MarketStream:
        sequence, rows = trading.sequenced_read(market=market, read=lambda: trading.resting_orders(market=market))
        return MarketStream(market, LevelBook.from_orders(sequence, rows))

    async def step(self) -> int:
        """One pass: read what was numbered since, send what it makes. Returns how many events it read."""
        read, messages = await self._db(self._pass)
        for group, message in messages:
            await self.layer.group_send(group, message)
        self.sent += len(messages)
        return read

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            now = iso(timezone.now())
            for market_id, stream in list(self.markets.items()):
                body = {"type": "heartbeat", "channel": "heartbeat", "market": stream.symbol,
                        "sequence": stream.book.sequence, "time": now}
                try:
                    await self.layer.group_send(*sent(market_group("heartbeat", market_id), "heartbeat", market_id,
                                                      body, stream.book.sequence))
                except Exception:
                    logger.warning("streamer: heartbeat not sent", exc_info=True)
            await asyncio.sleep(settings.STREAMS_HEARTBEAT_SECONDS)

    # --- one pass (on the database thread) -----------------------------------------------------------------

    def _pass(self) -> tuple[int, list[tuple[str, dict]]]:
        # One connection for the streamer's life (it holds the consumer lock), replaced only after an error.
        rows = stream_page(after=self.position, limit=PAGE)
        out: list[tuple[str, dict]] = []
        traded: set[int] = set()
        for q in rows:
            if q.market_id is not None and q.market_id not in self.markets:
                self._market_add(q.market_id)
            if q.type == BOOK_CHANGED:
                out += self._book_changed(self.markets[q.market_id], {**q.event.payload,
                                                                      "time": iso(q.event.created_at)})
            elif q.account_id is not None:
                event = envelope(q)
                out.append(sent(user_group(q.account_id), "user", None,
                                {"type": "user", "channel": "user", "event": event}, q.account_seq))
                if q.type == EventType.FILL_CREATED and event["data"].get("liquidity") == "taker":
                    out.append(self._match(q.market_id, event["data"]))
                    traded.add(q.market_id)
            self.position = q.seq
        out += self._gaps_closed()
        self.ticker_due |= traded
        now = time.monotonic()
        for market_id in [m for m in self.ticker_due if now - self.ticker_at.get(m, 0) >= TICKER_SECONDS]:
            self.ticker_due.discard(market_id)
            self.ticker_at[market_id] = now
            out.append(self._ticker(self.markets[market_id]))
        return len(rows), out

    def _market_add(self, market_id: int) -> None:
        market = Market.objects.select_related("base", "quote").get(pk=market_id)
        self.markets[market_id] = self._stream(market)

    def _book_changed(self, stream: MarketStream, payload: dict) -> list[tuple[str, dict]]:
        sequence = payload["sequence"]
        if payload.get("reset"):
            return self._reread(stream)
        if sequence > stream.book.sequence:
            stream.pending[sequence] = payload
        return self._drain(stream)

    def _drain(self, stream: MarketStream) -> list[tuple[str, dict]]:
        out = []
        book, group = stream.book, market_group("level2", stream.market.pk)
        for stale in [s for s in stream.pending if s <= book.sequence]:
            del stream.pending[stale]
        while (payload := stream.pending.pop(book.sequence + 1, None)) is not None:
            changed = book.apply_orders(
                (pk, side, Decimal(price) if price is not None else None, Decimal(size))
                for pk, side, price, size in payload["orders"])
            book.sequence += 1
            body = {"type": "l2update", "channel": "level2", "market": stream.symbol, "sequence": book.sequence,
                    "changes": [[side, stream.price(price), stream.size(size)] for side, price, size in changed],
                    "time": payload["time"]}
            out.append(sent(group, "level2", stream.market.pk, body, book.sequence))
        stream.gap_since = (stream.gap_since or time.monotonic()) if stream.pending else None
        return out

    def _gaps_closed(self) -> list[tuple[str, dict]]:
        out = []
        for stream in self.markets.values():
            if stream.gap_since is not None and time.monotonic() - stream.gap_since > GAP_SECONDS:
                logger.warning("streamer: %s waited %ss for book sequence %s; rereading the book", stream.symbol,
                               GAP_SECONDS, stream.book.sequence + 1)
                out += self._reread(stream)
        return out

    def _reread(self, stream: MarketStream) -> list[tuple[str, dict]]:
        fresh = self._stream(stream.market)
        stream.book, stream.gap_since = fresh.book, None
        out = [sent(market_group("level2", stream.market.pk), "level2", stream.market.pk,
                    level2_snapshot(stream, settings.STREAMS_LEVEL2_DEPTH), stream.book.sequence)]
        return out + self._drain(stream)

    def _match(self, market_id: int, fill: dict) -> tuple[str, dict]:
        body = {"type": "match", "channel": "matches", "market": fill["market"], "trade_id": fill["id"],
                "price": fill["price"], "size": fill["size"], "taker_side": fill["side"], "time": fill["created_at"]}
        return sent(market_group("matches", market_id), "matches", market_id, body)

    def _ticker(self, stream: MarketStream) -> tuple[str, dict]:
        ticker = trading.ticker(market=stream.market)
        _, quote_places, _ = market_places(stream.market)
        body = {"type": "ticker", "channel": "ticker", "market": stream.symbol, "sequence": stream.book.sequence,
                "last_price": stream.price(ticker.last_price), "last_size": stream.size(ticker.last_size),
                "last_at": iso(ticker.last_at), "best_bid": stream.price(stream.book.best("buy")),
                "best_ask": stream.price(stream.book.best("sell")), "open_24h": stream.price(ticker.open_24h),
                "high_24h": stream.price(ticker.high_24h), "low_24h": stream.price(ticker.low_24h),
                "volume_24h": stream.size(ticker.volume_24h),
                "quote_volume_24h": exact(ticker.quote_volume_24h, quote_places), "trades_24h": ticker.trades_24h}
        return sent(market_group("ticker", stream.market.pk), "ticker", stream.market.pk, body)
