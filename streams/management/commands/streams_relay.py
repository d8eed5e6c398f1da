"""``manage.py streams_relay``: the streamer process (README "Streams"), with the Redis channel layer. Several may
run; one streams at a time (the others stand by on the log's consumer lock)."""

import asyncio
import signal

from django.core.management.base import BaseCommand

from streams.streamer import Streamer


class Command(BaseCommand):
    help = "Relay committed events to the WebSocket channel layer (README 'Streams')."

    def handle(self, *args, **options):
        asyncio.run(self._run())

    async def _run(self):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Streamer(exclusive=True).run(stop)
