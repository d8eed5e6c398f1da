"""``manage.py events_relay [--channels sequence,webhooks,amqp]``: the events relay process (README "Events")."""

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from events import relay


class Command(BaseCommand):
    help = "Number committed events and deliver them to webhooks and RabbitMQ (until SIGTERM/SIGINT)."

    def add_arguments(self, parser):
        parser.add_argument("--channels", default="",
                            help="Comma-separated subset of sequence,webhooks,amqp (default: all configured).")

    def handle(self, *args, channels: str, **options):
        chosen = [c for c in channels.split(",") if c] or relay.default_channels()
        unknown = set(chosen) - set(relay.CHANNELS)
        if unknown:
            raise CommandError(f"Unknown channels: {', '.join(sorted(unknown))}")
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        relay.run(chosen, stop)
