"""The WebSocket face, ``/ws/v1/`` (README "Streams"): subscriptions, a snapshot on ``level2`` subscribe, and
everything the streamer sends for them, through a bounded buffer per connection.

The process's hub (``streams.hub``) hands each message to this connection with a plain call (``deliver``) that
only puts its text in the connection's buffer; a writer task sends from there to the socket. A client that does not read fills its
buffer (``STREAMS_BUFFER_MESSAGES``) and is closed with 4008: neither the streamer nor other clients ever wait
for it.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed, Throttled

from accounts.models import Scope
from streams import limits
from streams.authentication import handshake_authenticate
from streams.errors import CloseCode, Code
from streams.groups import CHANNELS, USER, market_group, user_group
from streams.hub import hub
from streams.snapshots import level2_snapshot_read, markets_by_symbol

logger = logging.getLogger(__name__)


class StreamConsumer(AsyncWebsocketConsumer):
    # No channel of its own in the layer (an alias that names no layer): the process's hub is the only member.
    channel_layer_alias = "streams-connections-have-no-channel"

    async def connect(self):
        self.idents: list[str] = []
        self.credential = None
        self.subscriptions: set[tuple[str, int | None]] = set()
        self.level2_from: dict[int, int] = {}  # market id -> the sequence of the snapshot this client got
        self.level2_early: dict[int, list[dict]] = {}  # market id -> updates that came while its snapshot was read
        self.buffer: asyncio.Queue[str] = asyncio.Queue(maxsize=settings.STREAMS_BUFFER_MESSAGES)
        self.closing = False
        self.writer = None
        await self.accept()
        self.writer = asyncio.create_task(self._write())
        ip = (self.scope.get("client") or ("unknown", 0))[0]
        if not self._acquire(f"ip:{ip}", settings.STREAMS_MAX_CONNECTIONS_PER_IP):
            return await self._close(CloseCode.TOO_MANY_CONNECTIONS, "too many connections from this IP")
        try:
            self.credential = await database_sync_to_async(handshake_authenticate)(self.scope)
        except AuthenticationFailed:
            return await self._close(CloseCode.INVALID_API_KEY, "invalid_api_key")
        except Throttled:
            return await self._close(CloseCode.TOO_MANY_CONNECTIONS, "authentication_throttled")
        if self.credential is not None and not self._acquire(f"key:{self.credential.key_id}",
                                                             settings.STREAMS_MAX_CONNECTIONS_PER_KEY):
            return await self._close(CloseCode.TOO_MANY_CONNECTIONS, "too many connections with this API key")

    def _acquire(self, ident: str, limit: int) -> bool:
        if limits.acquire(ident, limit):
            self.idents.append(ident)
            return True
        return False

    async def disconnect(self, code):
        for ident in self.idents:
            limits.release(ident)
        self.idents = []
        if self.writer is not None:
            self.writer.cancel()
        for channel, market_id in self.subscriptions:
            await hub().leave(self._group(channel, market_id), self)
        self.subscriptions.clear()

    # --- the client's messages --------------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        raw = text_data if text_data is not None else bytes_data
        if raw is None or len(raw) > settings.STREAMS_MAX_MESSAGE_BYTES:
            return self._error(Code.INVALID_MESSAGE, f"Send JSON text of at most {settings.STREAMS_MAX_MESSAGE_BYTES}"
                                                     " bytes.")
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._error(Code.INVALID_MESSAGE, "Not JSON.")
        kind = message.get("type") if isinstance(message, dict) else None
        if kind not in ("subscribe", "unsubscribe"):
            return self._error(Code.INVALID_MESSAGE, 'Expected {"type": "subscribe" or "unsubscribe", ...}.')
        wanted = await self._wanted(message)
        if wanted is None:
            return
        if kind == "subscribe":
            if not await self._subscribe(wanted):
                return  # refused as a whole, answered with an error
        else:
            await self._unsubscribe(wanted)
        self._reply({"type": "subscriptions", "channels": self._listing()})

    async def _wanted(self, message: dict) -> list[tuple[str, int | None, str | None]] | None:
        """(channel, market id, symbol) pairs the message names; None after answering an error."""
        channels, symbols = message.get("channels"), message.get("markets", [])
        if not (isinstance(channels, list) and channels and all(isinstance(c, str) for c in channels)
                and isinstance(symbols, list) and all(isinstance(s, str) for s in symbols)):
            return self._error(Code.INVALID_MESSAGE, '"channels": a list of names; "markets": a list of symbols.')
        unknown = sorted(set(channels) - set(CHANNELS))
        if unknown:
            return self._error(Code.UNKNOWN_CHANNEL, f"Unknown channels: {', '.join(unknown)}; "
                                                     f"known: {', '.join(CHANNELS)}.")
        markets = await database_sync_to_async(markets_by_symbol)(symbols) if symbols else {}
        missing = sorted(set(symbols) - set(markets))
        if missing:
            return self._error(Code.UNKNOWN_MARKET, f"Unknown markets: {', '.join(missing)}.")
        wanted = []
        for channel in dict.fromkeys(channels):
            if channel == USER:
                wanted.append((USER, None, None))
            elif not markets:
                return self._error(Code.MARKET_REQUIRED, f'The {channel} channel needs "markets".')
            else:
                wanted += [(channel, market_id, symbol) for symbol, market_id in markets.items()]
        return wanted

    async def _subscribe(self, wanted) -> bool:
        if any(channel == USER for channel, *_ in wanted) and not self._may_read_own():
            return False
        new = [(c, m, s) for c, m, s in wanted if (c, m) not in self.subscriptions]
        if len(self.subscriptions) + len(new) > settings.STREAMS_MAX_SUBSCRIPTIONS:
            self._error(Code.TOO_MANY_SUBSCRIPTIONS,
                        f"At most {settings.STREAMS_MAX_SUBSCRIPTIONS} (channel, market) pairs a connection.")
            return False
        for channel, market_id, symbol in new:
            if channel == "level2":
                self.level2_early[market_id] = []
            await hub().join(self._group(channel, market_id), self)
            self.subscriptions.add((channel, market_id))
            if channel == "level2":
                # Joined first, read second: updates after the snapshot's sequence are already held back.
                snapshot = await database_sync_to_async(level2_snapshot_read)(market_id)
                self.level2_from[market_id] = snapshot["sequence"]
                self._reply(snapshot)
                for message in self.level2_early.pop(market_id, []):
                    self.deliver(message)
        return True

    def _may_read_own(self) -> bool:
        if self.credential is None:
            self._error(Code.AUTHENTICATION_REQUIRED, "The user channel needs an API key in the handshake "
                                                      "(Authorization: ApiKey <prefix>.<secret>).")
            return False
        if Scope.READ not in self.credential.scopes:
            self._error(Code.SCOPE_REQUIRED, "The user channel needs the 'read' scope.")
            return False
        return True

    async def _unsubscribe(self, wanted) -> None:
        for channel, market_id, _ in wanted:
            if (channel, market_id) in self.subscriptions:
                self.subscriptions.discard((channel, market_id))
                if channel == "level2":
                    self.level2_from.pop(market_id, None)
                await hub().leave(self._group(channel, market_id), self)

    def _group(self, channel: str, market_id: int | None) -> str:
        return user_group(self.credential.account_id) if channel == USER else market_group(channel, market_id)

    def _listing(self) -> list[dict]:
        by_channel: dict[str, list[int]] = {}
        for channel, market_id in sorted(self.subscriptions, key=lambda s: (s[0], s[1] or 0)):
            by_channel.setdefault(channel, []).append(market_id)
        return [{"name": channel, "markets": ids if channel != USER else []} for channel, ids in by_channel.items()]

    # --- the streamer's messages ------------------------------------------------------------------------------

    def deliver(self, message: dict) -> None:
        """A message of a group this connection is in (called by the hub; never blocks)."""
        if message["channel"] == "level2":
            market_id, sequence = message["market"], message["sequence"]
            early = self.level2_early.get(market_id)
            if early is not None:
                early.append(message)  # its snapshot is being read: decided once it is
                return
            start = self.level2_from.get(market_id)
            if start is None or sequence <= start:
                return  # unsubscribed since, or already in the snapshot this client got
            self.level2_from[market_id] = sequence
        self._put(message["text"])

    # --- the buffer and the writer ----------------------------------------------------------------------------

    def _reply(self, body: dict) -> None:
        self._put(orjson.dumps(body).decode())

    def _error(self, code: Code, text: str) -> None:
        self._reply({"type": "error", "code": str(code), "message": text})
        return None

    def _put(self, text: str) -> None:
        if self.closing:
            return
        try:
            self.buffer.put_nowait(text)
        except asyncio.QueueFull:
            logger.info("streams: cutting off a slow client (%s messages waiting)", self.buffer.qsize())
            asyncio.ensure_future(self._close(
                CloseCode.SLOW_CONSUMER, f"slow consumer: more than {self.buffer.maxsize} messages waiting; "
                                         "reconnect and resync from REST"))

    async def _write(self) -> None:
        while True:
            text = await self.buffer.get()
            await self.send(text_data=text)

    async def _close(self, code: int, reason: str) -> None:
        """Close with ``code``: after what is buffered, unless the client is too slow to take it."""
        if self.closing:
            return
        self.closing = True
        if code != CloseCode.SLOW_CONSUMER and self.writer is not None:
            try:
                await asyncio.wait_for(self._drained(), timeout=2)
            except TimeoutError:
                pass
        if self.writer is not None:
            self.writer.cancel()
        await self.close(code=int(code), reason=reason[:120])

    async def _drained(self) -> None:
        while not self.buffer.empty():
            await asyncio.sleep(0.01)
