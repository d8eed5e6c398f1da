"""The console's operations page: the key metrics as charts for staff, drawn as inline SVG from the database
(no Grafana, no script, no CDN). Orders accepted and settlement entries per minute over the last hour, and now:
orders waiting and matcher lag per market, the matcher heartbeat, Celery queue depth, the latest reconciliation.
The same figures are on ``/metrics`` for Prometheus (``deploy/``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

from compliance.metrics import reconciliation_state
from core.heartbeats import MATCHER, heartbeat_ages
from core.metrics import celery_queue_depth
from trading.metrics import matcher_backlog
from trading.models import Fill, Order

WIDTH, HEIGHT, MINUTES = 600, 120, 60


@dataclass(frozen=True)
class Chart:
    title: str
    points: str  # SVG polyline points
    bars: list[tuple[float, float, float, int]]  # x, y, height, value
    peak: int
    total: int
    last: int


def _per_minute(queryset, title: str) -> Chart:
    now = timezone.now().replace(second=0, microsecond=0)
    start = now - timedelta(minutes=MINUTES - 1)
    counts = dict(queryset.filter(created_at__gte=start).annotate(minute=TruncMinute("created_at"))
                  .values_list("minute").annotate(n=Count("id")).order_by())
    series = [counts.get(start + timedelta(minutes=i), 0) for i in range(MINUTES)]
    peak = max(series) or 1
    step = WIDTH / MINUTES
    bars = [(i * step, HEIGHT - HEIGHT * n / peak, HEIGHT * n / peak, n) for i, n in enumerate(series)]
    points = " ".join(f"{i * step + step / 2:.1f},{HEIGHT - HEIGHT * n / peak:.1f}" for i, n in enumerate(series))
    return Chart(title, points, bars, max(series), sum(series), series[-1])


def _samples(families) -> dict[str, list[tuple[dict, float]]]:
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in families}


def operations_overview() -> dict:
    backlog = _samples(matcher_backlog())
    lag = {labels["market"]: value for labels, value in backlog["brokerage_matcher_lag_seconds"]}
    markets = [{"market": labels["market"], "waiting": int(value), "lag": lag.get(labels["market"], 0.0)}
               for labels, value in backlog["brokerage_orders_new"]]
    worst = max((m["lag"] for m in markets), default=0.0) or 1.0
    for market in markets:
        market["bar"] = WIDTH * market["lag"] / worst
    try:
        queues = [(labels["queue"], int(value))
                  for labels, value in _samples(celery_queue_depth()).get("brokerage_celery_queue_depth", [])]
    except Exception as exc:  # the broker is down: say so on the page
        queues = [(f"unreachable: {type(exc).__name__}", -1)]
    reconciliation = _samples(reconciliation_state())
    return {
        "charts": [_per_minute(Order.objects.all(), "Orders accepted per minute (last hour)"),
                   _per_minute(Fill.objects.all(), "Settlement entries (fills) per minute (last hour)")],
        "markets": markets,
        "heartbeat_age": heartbeat_ages().get(MATCHER),
        "queues": queues,
        "reconciliation_ok": next((v for _, v in reconciliation["brokerage_reconciliation_ok"]), None),
        "reconciliation_breaks": [(labels["check"], int(v)) for labels, v in
                                  reconciliation["brokerage_reconciliation_breaks"] if v],
        "width": WIDTH, "height": HEIGHT,
    }
