"""The firm's principal inventory: positions per asset, exposure limits, and the desk's daily figures.

The position in an asset is the natural balance of ``firm:inventory`` in it (README "Quotes: the firm's
inventory"): what the firm itself owns of what custody holds, negative when it is short. A trade against the
inventory (a quote when it is priced, a conversion or funding before it is posted) is checked against
``InventoryLimit`` with the positions as last committed, for a clear refusal; the guarantee is PostgreSQL's
(migration ``trading/0005``): a trigger refuses the update of a locked inventory balance row that goes beyond a
limit, so no two concurrent trades can both squeeze under it. ``exposure_guarded`` turns that refusal into the
caller's error. A position beyond a limit (operations lowered it) may still move back toward it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from ledger import services as ledger
from ledger.models import Balance, LedgerAccount, Purpose
from ledger.reference import FIRM_ACCOUNTS
from trading.errors import ExposureLimitExceeded
from trading.models import InventoryLimit, Quote, QuoteStatus
from trading.pricing import within_limits

ZERO = Decimal(0)
INVENTORY_CODE = FIRM_ACCOUNTS[Purpose.INVENTORY][0]


def inventory_account() -> LedgerAccount:
    return ledger.firm_account(Purpose.INVENTORY)


# One plain statement (portable SQL: the embedded SQLite default runs it too), on the hot paths of quoting and
# executing: the limits of the assets and the inventory's position in each.
EXPOSURES_SQL = """
SELECT l.asset_id, l.max_long, l.max_short, b.amount FROM trading_inventorylimit l
  LEFT JOIN ledger_balance b ON b.asset_id = l.asset_id
       AND b.account_id = (SELECT id FROM ledger_ledgeraccount WHERE code = %s)
 WHERE l.asset_id IN ({assets})
"""


def exposures_read(assets: Iterable[str]) -> tuple[dict[str, Decimal], dict[str, InventoryLimit]]:
    """The inventory position and the limits of each asset that has limits, in one query. An asset without
    limits is left out of both (nothing may move it). Inside a transaction that posted to the inventory, the
    positions are the locked rows as that transaction changed them."""
    assets = sorted(set(assets))
    with connection.cursor() as cursor:
        cursor.execute(EXPOSURES_SQL.format(assets=", ".join(["%s"] * len(assets))), [INVENTORY_CODE, *assets])
        rows = cursor.fetchall()
    positions, limits = {}, {}
    for asset, max_long, max_short, amount in rows:
        limits[asset] = InventoryLimit(asset_id=asset, max_long=decimal_of(max_long), max_short=decimal_of(max_short))
        positions[asset] = ZERO if amount is None else decimal_of(amount)
    return positions, limits


def decimal_of(value) -> Decimal:
    """A numeric column read with raw SQL: a Decimal on PostgreSQL, a number or text on SQLite."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def exposure_refusal(deltas: Mapping[str, Decimal], *, held: Mapping[str, Decimal],
                     limits: Mapping[str, InventoryLimit]) -> str | None:
    """Why moving the inventory by ``deltas`` (asset -> signed change) from the positions ``held`` would breach a
    limit, or None when it stays within every limit (or moves back toward it). An asset without a limit is
    refused. The same rule as the database trigger's."""
    for asset, delta in sorted(deltas.items()):
        if not delta:
            continue
        limit = limits.get(asset)
        if limit is None:
            return f"the firm has no exposure limit in {asset}"
        after = held.get(asset, ZERO) + delta
        further = (after > limit.max_long and delta > 0) or (after < -limit.max_short and delta < 0)
        if further and not within_limits(position=after, max_long=limit.max_long, max_short=limit.max_short):
            side = f"long limit {limit.max_long.normalize():f}" if after > 0 else \
                f"short limit {limit.max_short.normalize():f}"
            return f"the firm's {asset} position would be {after.normalize():f}, beyond its {side}"
    return None


def exposure_require(deltas: Mapping[str, Decimal], *, error=ExposureLimitExceeded) -> None:
    """Refuse with ``error`` a trade that would breach a limit, from the positions as last committed."""
    held, limits = exposures_read(deltas)
    reason = exposure_refusal(deltas, held=held, limits=limits)
    if reason is not None:
        raise error(f"Refused: {reason}.")


LIMIT_MARKER = "inventory_limit:"


@contextmanager
def exposure_guarded(error=ExposureLimitExceeded) -> Iterator[None]:
    """Turn the database's refusal of an inventory balance beyond its limits (the trigger of ``trading/0005``,
    raised while the ledger posts) into ``error``. The ledger's savepoint has been rolled back by then."""
    try:
        yield
    except IntegrityError as exc:
        text = str(exc)
        if LIMIT_MARKER not in text:
            raise
        raise error(f"Refused: {text.split(LIMIT_MARKER, 1)[1].splitlines()[0].strip()}.") from exc


# --- the console's inventory page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetExposure:
    asset: str
    position: Decimal
    max_long: Decimal | None
    max_short: Decimal | None
    custody: Decimal
    clients: Decimal

    @property
    def utilisation(self) -> Decimal | None:
        """Position over the limit on its side, in percent (None without a limit, or a zero limit)."""
        limit = self.max_long if self.position >= 0 else self.max_short
        if not limit:
            return None
        return (abs(self.position) * 100 / limit).quantize(Decimal("0.1"))

    @property
    def within_limits(self) -> bool:
        if self.max_long is None:
            return self.position == 0
        return within_limits(position=self.position, max_long=self.max_long, max_short=self.max_short)


def exposures() -> list[AssetExposure]:
    """Per asset with a position, a limit or custody: the inventory position, its limits, and what custody
    holds against what clients are owed."""
    rows = Balance.objects.filter(account__purpose__in=[Purpose.INVENTORY, Purpose.CUSTODY, Purpose.CLIENT]) \
        .values("asset_id", "account__purpose").annotate(total=Sum("amount")).order_by()
    totals: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        totals.setdefault(row["asset_id"], {})[row["account__purpose"]] = row["total"] or ZERO
    limits = {limit.asset_id: limit for limit in InventoryLimit.objects.all()}
    result = []
    for asset in sorted(set(totals) | set(limits)):
        by_purpose, limit = totals.get(asset, {}), limits.get(asset)
        result.append(AssetExposure(
            asset=asset, position=by_purpose.get(Purpose.INVENTORY, ZERO),
            max_long=limit.max_long if limit else None, max_short=limit.max_short if limit else None,
            custody=by_purpose.get(Purpose.CUSTODY, ZERO), clients=by_purpose.get(Purpose.CLIENT, ZERO),
        ))
    return result


@dataclass(frozen=True)
class DeskDay:
    day: date
    quote_asset: str
    quotes: int
    volume: Decimal  # quote-asset notional of the executed quotes
    spread_captured: Decimal
    fees: Decimal


def desk_days(*, since: datetime) -> list[DeskDay]:
    """Per UTC day and quote asset since ``since``: executed quotes, their volume, the spread captured
    (principal P&L at the reference) and the fees, oldest day first."""
    rows = (
        Quote.objects.filter(status=QuoteStatus.EXECUTED, executed_at__gte=since)
        .annotate(day=TruncDate("executed_at"))
        .values("day", "market__quote_id")
        .annotate(quotes=Count("id"), volume=Sum("quote_amount"), captured=Sum("spread_captured"), fees=Sum("fee"))
        .order_by("day", "market__quote_id")
    )
    return [DeskDay(r["day"], r["market__quote_id"], r["quotes"], r["volume"] or ZERO, r["captured"] or ZERO,
                    r["fees"] or ZERO) for r in rows]


@dataclass(frozen=True)
class Bar:
    day: date
    value: Decimal
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    zero_y: int  # where the zero line is drawn


def chart_bars(days: list[DeskDay], *, quote_asset: str, first: date, last: date, width: int = 600,
               height: int = 160) -> Chart:
    """Bars of the daily spread captured in ``quote_asset`` from ``first`` to ``last`` (one per day, zero on a
    day without quotes), scaled to a ``width`` x ``height`` drawing with a zero line at mid-height when any day
    lost money. Coordinates for an inline SVG."""
    values = {d.day: d.spread_captured for d in days if d.quote_asset == quote_asset}
    span = (last - first).days + 1
    series = [(first + timedelta(days=i), values.get(first + timedelta(days=i), ZERO)) for i in range(span)]
    top = max((abs(v) for _, v in series), default=ZERO) or Decimal(1)
    has_losses = any(v < 0 for _, v in series)
    zero_line = height // 2 if has_losses else height
    scale = Decimal(zero_line) / top
    slot = max(1, width // span)
    bars = []
    for i, (day, value) in enumerate(series):
        size = int((abs(value) * scale).to_integral_value())
        y = zero_line - size if value >= 0 else zero_line
        bars.append(Bar(day=day, value=value, x=i * slot, y=y, width=max(1, slot - 2), height=size))
    return Chart(bars=bars, zero_y=zero_line)
