"""ASGI lifespan: the in-process streamer (in-memory channel layer), started with the server and stopped with it."""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

logger = logging.getLogger(__name__)


class Lifespan:
    def __init__(self):
        self.stop = asyncio.Event()
        self.task = None

    async def __call__(self, scope, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if settings.STREAMS_STREAMER_IN_PROCESS:
                    from streams.streamer import Streamer

                    self.task = asyncio.create_task(Streamer().run(self.stop))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.stop.set()
                if self.task is not None:
                    try:
                        await asyncio.wait_for(self.task, timeout=5)
                    except (TimeoutError, Exception):
                        logger.warning("streamer did not stop cleanly", exc_info=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
