"""The firm's principal inventory: positions per asset, exposure limits, and the desk's daily figures.

The position in an asset is the natural balance of ``firm:inventory`` in it (README "Quotes: the firm's
inventory"): what the firm itself owns of what custody holds, negative when it is short. Every trade against
the inventory (quote executions, conversions, funding) is checked twice against ``InventoryLimit``: before it is
written, with the positions as last committed (a clear refusal), and after its entry is posted, with the
inventory balance rows locked by that entry until the commit (the guarantee: no two concurrent trades can both
squeeze under a limit).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

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


def positions(assets: Iterable[str]) -> dict[str, Decimal]:
    """The inventory position per asset (zero where the firm never traded it). Inside a transaction that
    posted to the inventory, these are the locked rows as that transaction changed them."""
    assets = list(assets)
    found = dict(Balance.objects.filter(account__code=INVENTORY_CODE, asset_id__in=assets)
                 .values_list("asset_id", "amount"))
    return {asset: found.get(asset, ZERO) for asset in assets}


def limits_of(assets: Iterable[str]) -> dict[str, InventoryLimit]:
    return {limit.asset_id: limit for limit in InventoryLimit.objects.filter(asset_id__in=list(assets))}


def exposure_refusal(deltas: Mapping[str, Decimal], *, held: Mapping[str, Decimal],
                     limits: Mapping[str, InventoryLimit]) -> str | None:
    """Why moving the inventory by ``deltas`` (asset -> signed change) from the positions ``held`` would breach a
    limit, or None when it stays within every limit. An asset without a limit is refused."""
    for asset, delta in sorted(deltas.items()):
        limit = limits.get(asset)
        if limit is None:
            return f"the firm has no exposure limit in {asset}"
        after = held.get(asset, ZERO) + delta
        if delta and not within_limits(position=after, max_long=limit.max_long, max_short=limit.max_short):
            side = f"long limit {limit.max_long.normalize():f}" if after > 0 else \
                f"short limit {limit.max_short.normalize():f}"
            return f"the firm's {asset} position would be {after.normalize():f}, beyond its {side}"
    return None


def exposure_require(deltas: Mapping[str, Decimal], *, posted: bool, error=ExposureLimitExceeded,
                     limits: Mapping[str, InventoryLimit] | None = None) -> None:
    """Refuse with ``error`` a trade that would breach a limit. ``posted``: the trade's entry is already posted in
    this transaction (the positions read include it, and its balance rows are locked until the commit)."""
    limits = limits_of(deltas) if limits is None else limits
    held = positions(deltas)
    if posted:
        held = {asset: amount - deltas[asset] for asset, amount in held.items()}
    reason = exposure_refusal(deltas, held=held, limits=limits)
    if reason is not None:
        raise error(f"Refused: {reason}.")


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
