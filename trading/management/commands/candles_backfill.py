"""manage.py candles_backfill [--market SYMBOL ...] [--since YYYY-MM-DD] [--until YYYY-MM-DD]: rebuild candles from
fills (README "Public market data: candles")."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from trading.selectors import markets_list
from trading.services import candles_backfill


class Command(BaseCommand):
    help = "Recompute the candles of markets from their fills, one UTC day per transaction (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--market", action="append", dest="symbols", metavar="SYMBOL",
                            help="A market to rebuild (repeatable); default every market.")
        parser.add_argument("--since", type=date.fromisoformat, help="First UTC day; default the first fill's.")
        parser.add_argument("--until", type=date.fromisoformat, help="Last UTC day; default the last fill's.")

    def handle(self, *args, symbols, since, until, **options):
        if since and until and since > until:
            raise CommandError("--since is after --until.")
        markets = list(markets_list().filter(symbol__in=symbols) if symbols else markets_list())
        unknown = set(symbols or ()) - {m.symbol for m in markets}
        if unknown:
            raise CommandError(f"No such market: {', '.join(sorted(unknown))}.")
        for market in markets:
            summary = candles_backfill(market=market, since=since, until=until)
            self.stdout.write(self.style.SUCCESS(
                f"{summary.market}: {summary.candles} candles over {summary.days} days rebuilt."))
