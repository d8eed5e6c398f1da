"""``manage.py streams_server``: the ASGI server (uvicorn, websockets) for ``/ws/v1/`` (README "Streams").

The listening socket is made here so that ``STREAMS_SEND_BUFFER_BYTES`` can bound the kernel's send buffer of
every connection (accepted sockets inherit it): a stalled client then holds little memory and is detected
sooner. Messages from clients are capped at ``STREAMS_MAX_MESSAGE_BYTES`` (close 1009 above it)."""

import socket

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the ASGI application (WebSocket streams) with uvicorn."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)

    def handle(self, *args, host, port, **options):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if settings.STREAMS_SEND_BUFFER_BYTES:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.STREAMS_SEND_BUFFER_BYTES)
        sock.bind((host, port))
        config = uvicorn.Config(
            "brokerage.asgi:application", ws="websockets-sansio", lifespan="on", access_log=False, log_config=None,
            ws_max_size=max(settings.STREAMS_MAX_MESSAGE_BYTES, 1024), ws_ping_interval=20, ws_ping_timeout=20,
            # Compression costs a zlib pass per message per connection, for messages of a few hundred bytes.
            ws_per_message_deflate=False,
            timeout_graceful_shutdown=5,
        )
        uvicorn.Server(config).run(sockets=[sock])
