"""The beat's market sweep runs every 5 s: an idle sweep writes nothing at INFO, one that finds work says so."""

import logging

import pytest
from celery.app import trace

import brokerage.celery  # noqa: F401  (installs the filter, as the worker does)
from accounts.models import Role
from tests.api import api_client_for
from tests.factories import MarketFactory, fund
from trading.models import Order, OrderStatus
from trading.tasks import sweep_markets

SWEEP = "trading.tasks.sweep_markets"


def _success(name: str, return_value: str) -> None:
    trace.info(trace.LOG_SUCCESS, {"id": "t-1", "name": name, "return_value": return_value, "runtime": 0.01,
                                   "args": "()", "kwargs": "{}"})


def _received(name: str) -> None:
    logging.getLogger("celery.worker.strategy").info("Task %(name)s[%(id)s] received", {"name": name, "id": "t-1"},
                                                     extra={"data": {"name": name, "id": "t-1"}})


def _beat_sends(task: str) -> None:
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", "sweep-markets", task)


def test_celerys_lines_about_an_idle_sweep_are_debug_only(caplog):
    caplog.set_level(logging.INFO)
    _beat_sends(SWEEP)
    _received(SWEEP)
    _success(SWEEP, "[]")
    assert caplog.records == []
    caplog.set_level(logging.DEBUG)
    _beat_sends(SWEEP)
    _success(SWEEP, "[]")
    assert [(r.name, r.levelname) for r in caplog.records] == [("celery.beat", "DEBUG"),
                                                              ("celery.app.trace", "DEBUG")]


def test_a_sweep_that_found_work_and_other_tasks_stay_at_info(caplog):
    caplog.set_level(logging.INFO)
    _success(SWEEP, "[3]")
    _received("trading.tasks.match_market")
    _success("trading.tasks.match_market", "{'settled': 5}")
    _beat_sends("ledger.tasks.reconciliation_run")
    assert [(r.name, r.levelname) for r in caplog.records] == [
        ("celery.app.trace", "INFO"), ("celery.worker.strategy", "INFO"), ("celery.app.trace", "INFO"),
        ("celery.beat", "INFO")]
    assert "succeeded in 0.01s: [3]" in caplog.records[0].getMessage()


@pytest.mark.django_db
def test_the_sweep_itself_logs_only_when_it_wakes_a_market(caplog):
    caplog.set_level(logging.INFO, logger="trading.tasks")
    assert sweep_markets() == []
    assert [r for r in caplog.records if r.name == "trading.tasks"] == []
    market = MarketFactory()
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "USD", "1000")
    client.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.01", "price": "100.00"},
                format="json")
    Order.objects.update(status=OrderStatus.NEW)  # as if the wake-up message had been lost
    assert sweep_markets() == [market.pk]
    [record] = [r for r in caplog.records if r.name == "trading.tasks"]
    assert record.levelname == "INFO" and f"[{market.pk}]" in record.getMessage()
