"""One subscriber to the channel layer per ASGI process, handing each message to the process's connections.

Without it every connection is a channel-layer member of its own, and each message costs, per connection, a
layer queue, a dispatch by the consumer's receive loop and a task switch. The hub joins each group once, takes
each message once, and puts its text (serialised once by the streamer) straight into every member's bounded
buffer (``StreamConsumer.deliver``), a plain function call; the connections' writer tasks do the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


class Hub:
    def __init__(self):
        self.members: dict[str, set] = defaultdict(set)
        self.channel: str | None = None
        self.task: asyncio.Task | None = None
        self.lock = asyncio.Lock()

    async def join(self, group: str, member) -> None:
        layer = get_channel_layer()
        async with self.lock:
            if self.channel is None:
                self.channel = await layer.new_channel()
                self.task = asyncio.create_task(self._run(layer, self.channel))
            if not self.members[group]:
                await layer.group_add(group, self.channel)
            self.members[group].add(member)

    async def leave(self, group: str, member) -> None:
        async with self.lock:
            members = self.members.get(group)
            if not members or member not in members:
                return
            members.discard(member)
            if not members:
                del self.members[group]
                await get_channel_layer().group_discard(group, self.channel)

    async def _run(self, layer, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away: the layer reconnects; clients see the sequence gap and resync
                logger.warning("streams hub: receiving failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            for member in list(self.members.get(message["group"], ())):
                member.deliver(message)
            # Let the writers send before the next message: a burst (a pass of the streamer) would otherwise fill
            # every buffer before any writer ran, and cut off clients that keep up (receive() does not yield
            # while messages are queued).
            await asyncio.sleep(0)


_hubs: dict[int, Hub] = {}


def hub() -> Hub:
    """This process's hub (one per event loop: tests run several servers' loops in one process)."""
    loop = id(asyncio.get_running_loop())
    if loop not in _hubs:
        _hubs[loop] = Hub()
    return _hubs[loop]
