"""Scrape-time metrics of the event log: what each consumer still has to deliver, and how old the oldest of it
is (the alert ``BrokerageEventsRelayLagging`` and the dashboard read these). The sequencer counts as a consumer:
its backlog is what is written and not numbered yet."""

from __future__ import annotations

from django.utils import timezone

from core.metrics import gauge_family
from events.selectors import delivery_status


def events_backlog():
    status = delivery_status()
    backlog = gauge_family("events_relay_backlog", "Events not yet delivered (or numbered, for the sequencer), "
                           "per consumer.", ["consumer"])
    lag = gauge_family("events_relay_lag_seconds", "Age of the oldest event a consumer has not delivered yet "
                       "(0 if none), per consumer.", ["consumer"])
    now = timezone.now()

    def age(at) -> float:
        return max((now - at).total_seconds(), 0.0) if at else 0.0

    backlog.add_metric(["sequencer"], status.waiting_for_number)
    lag.add_metric(["sequencer"], age(status.oldest_waiting_at))
    for consumer in status.consumers:
        backlog.add_metric([consumer.name], consumer.behind)
        lag.add_metric([consumer.name], age(consumer.oldest_pending_at))
    return [backlog, lag]
