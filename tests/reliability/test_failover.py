"""Failover under load, on real services: Redis stopped, PostgreSQL restarted, a matcher SIGKILLed, a web process
SIGKILLed mid-request. Every service a test stops is a PRIVATE instance on a port of our range
(``tests/ops/servers.py``); the shared PostgreSQL and Redis are never touched. Each test is bounded in time and
ends with the books checked by ``assert_books_consistent`` (reconciliation included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from ledger.models import Balance, LedgerAccount
from tests.ops.servers import (
    ROOT,
    Gunicorn,
    PrivatePostgres,
    PrivateRedis,
    base_env,
    celery_process,
    request,
    stop,
    worker_args,
)
from tests.reliability.db import RowLock, waiting_on
from tests.reliability.flow import OrderFlow, desk_prepare
from tests.reliability.invariants import assert_books_consistent
from tests.trading.workers import broker_url, wait_for  # noqa: F401 - fixture
from trading.models import Order, OrderStatus

pytestmark = [pytest.mark.failover, pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

SWEEP = 2.0  # the beat's sweep interval in these tests (production: 5 s)


def _deposited(desk: dict) -> dict[str, Decimal]:
    return {asset: Decimal(amount) for asset, amount in desk["deposited"].items()}


def _worker(tmp_path, env, name):
    process = celery_process("worker", tmp_path / f"{name}.log", env, *worker_args(name))
    process.log = tmp_path / f"{name}.log"
    assert wait_for(lambda: "ready." in process.log.read_text() or process.poll() is not None, 60)
    assert process.poll() is None, process.log.read_text()
    return process


def _beat(tmp_path, env):
    return celery_process("beat", tmp_path / "beat.log", env, "--schedule", str(tmp_path / "beat-schedule"),
                          "--max-interval", "1")


def _no_new_orders() -> bool:
    return not Order.objects.filter(status=OrderStatus.NEW).exists()


# --- Redis stopped for 10 s --------------------------------------------------------------------------------


def test_redis_stopped_for_ten_seconds_orders_are_accepted_and_matched_after(tmp_path):
    desk = desk_prepare()
    redis_server = PrivateRedis(tmp_path / "redis.log")
    env = base_env(CELERY_BROKER_URL=redis_server.url, REDIS_URL=redis_server.url, SWEEP_INTERVAL_SECONDS=str(SWEEP))
    processes = [_worker(tmp_path, env, "matcher"), _beat(tmp_path, env)]
    web = Gunicorn(tmp_path / "web.log", env, workers=2)
    flow = OrderFlow(web.url, desk, rate=20)
    try:
        flow.start()
        time.sleep(3)
        redis_server.stop()
        down_at = time.monotonic()
        time.sleep(10)
        redis_server.start()
        up_at = time.monotonic()
        time.sleep(3)
        flow.stop()
        # The database is the queue of record: the sweep (every SWEEP s) wakes the matcher once Redis is back.
        assert wait_for(_no_new_orders, 60), Order.objects.filter(status=OrderStatus.NEW).count()
    finally:
        web.stop()
        for process in processes:
            stop(process)
        redis_server.stop()

    during = flow.statuses(down_at, up_at)
    assert during[201] >= 100, during  # ~20 orders/s kept being accepted while Redis was down
    assert set(flow.statuses()) == {201}, flow.statuses()  # never an error, not even a retry
    slow = [a.seconds for a in flow.attempts if down_at <= a.at < up_at and a.seconds > 2]
    assert not slow, f"placements waited on the dead broker: {sorted(slow)[-5:]}"
    assert not flow.unresolved
    orders = dict(Order.objects.values_list("client_order_id", "id"))
    assert orders == flow.accepted  # every accepted order stored once, nothing else
    assert_books_consistent(deposited=_deposited(desk), matched=True)


# --- PostgreSQL restarted ---------------------------------------------------------------------------------


def _on_private_db(url: str, *argv: str) -> str:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "brokerage.settings"}
    result = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_postgresql_restarted_requests_fail_fast_with_503_and_recover(tmp_path):
    pg = PrivatePostgres()
    try:
        subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "brokerage"],
                       check=True, timeout=30)
        db_url = pg.url("brokerage")
        _on_private_db(db_url, "manage.py", "migrate", "-v0")
        desk = json.loads(_on_private_db(db_url, "-m", "tests.reliability.flow", "prepare").splitlines()[-1])
        redis_server = PrivateRedis(tmp_path / "redis.log")
        env = base_env(DATABASE_URL=db_url, CELERY_BROKER_URL=redis_server.url, REDIS_URL=redis_server.url,
                       SWEEP_INTERVAL_SECONDS=str(SWEEP), DB_CONNECT_TIMEOUT="2")
        processes = [_worker(tmp_path, env, "matcher"), _beat(tmp_path, env)]
        web = Gunicorn(tmp_path / "web.log", env, workers=2)
        flow = OrderFlow(web.url, desk, rate=15)
        readiness: list[tuple[float, int, list]] = []
        watching = threading.Event()

        def watch():
            while not watching.is_set():
                at = time.monotonic()
                try:
                    status, _, body = request("GET", f"{web.url}/readyz?check=database&check=migrations", timeout=5)
                    readiness.append((at, status, body.get("failing", []) if isinstance(body, dict) else []))
                except OSError:
                    readiness.append((at, 0, []))
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        try:
            flow.start()
            watcher.start()
            time.sleep(3)
            down_at = time.monotonic()
            pg.stop("fast")  # terminates every session mid-transaction
            time.sleep(4)
            starting_at = time.monotonic()  # from here the server may answer before pg.start() returns
            pg.start()
            up_at = time.monotonic()
            assert wait_for(lambda: any(at > up_at and s == 200 for at, s, _ in readiness), 30), readiness[-5:]
            time.sleep(4)
            flow.stop()
            watching.set()
            watcher.join(timeout=10)
            check = {}

            def settled() -> bool:
                check.update(json.loads(_on_private_db(db_url, "-m", "tests.reliability.flow", "check",
                                                       json.dumps(desk["deposited"])).splitlines()[-1]))
                return not check["problems"]

            assert wait_for(settled, 60), check.get("problems")
        finally:
            watching.set()
            web.stop()
            for process in processes:
                stop(process)
            redis_server.stop()
    finally:
        pg.destroy()

    statuses = flow.statuses()
    assert set(statuses) <= {201, 503, "URLError", "RemoteDisconnected", "ConnectionResetError"}, statuses
    assert 500 not in statuses
    unavailable = [a for a in flow.attempts if a.status == 503]
    assert unavailable, "no request hit the restart"
    assert all(a.code == "service_unavailable" for a in unavailable)
    assert max(a.seconds for a in unavailable) < 5, "503s must come fast, not after a long timeout"
    assert not flow.unresolved  # every order was accepted once the database was back: no manual step
    assert check["orders"] == len(flow.accepted)
    assert check["client_order_ids"] == sorted(flow.accepted)
    # /readyz: ready, then 503 naming the database while it was down, then ready again.
    before = [s for at, s, _ in readiness if at < down_at]
    down = [(s, failing) for at, s, failing in readiness if down_at + 0.5 < at < starting_at]
    after = [s for at, s, _ in readiness if at > up_at + 3]
    assert before and set(before) == {200}
    assert down and all(s == 503 and "database" in failing for s, failing in down), down
    assert after and after[-1] == 200


# --- two matchers, one SIGKILLed --------------------------------------------------------------------------


def test_two_matchers_one_killed_under_load_the_other_takes_over(broker_url, tmp_path):  # noqa: F811
    desk = desk_prepare()
    env = base_env(CELERY_BROKER_URL=broker_url, SWEEP_INTERVAL_SECONDS=str(SWEEP))
    doomed, survivor = _worker(tmp_path, env, "doomed"), _worker(tmp_path, env, "survivor")
    beat = _beat(tmp_path, env)
    web = Gunicorn(tmp_path / "web.log", base_env(CELERY_BROKER_URL=broker_url), workers=2)
    flow = OrderFlow(web.url, desk, rate=30)
    try:
        flow.start()
        assert wait_for(lambda: "match_market" in doomed.log.read_text(), 20), "the doomed worker never matched"
        time.sleep(2)
        doomed.kill()
        assert doomed.wait(timeout=10) == -9
        killed_at = time.time()
        time.sleep(6)
        flow.stop()
        assert wait_for(_no_new_orders, SWEEP + 10), Order.objects.filter(status=OrderStatus.NEW).count()
    finally:
        web.stop()
        for process in (doomed, survivor, beat):
            stop(process)

    # Orders placed after the kill were matched by the survivor within the sweep interval (plus a batch).
    late = [(o.updated_at.timestamp() - o.created_at.timestamp())
            for o in Order.objects.filter(created_at__gt=_utc(killed_at))]
    assert late, "no order after the kill"
    assert max(late) < SWEEP + 2, sorted(late)[-5:]
    assert "match_market" in survivor.log.read_text()
    assert not flow.unresolved and set(flow.statuses()) == {201}
    assert dict(Order.objects.values_list("client_order_id", "id")) == flow.accepted
    assert_books_consistent(deposited=_deposited(desk), matched=True)


def _utc(epoch: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


# --- a web process killed mid-request ---------------------------------------------------------------------


def _post(url: str, secret: str, client_order_id: str):
    body = {"market": "BTC-USD", "side": "buy", "size": "0.01", "price": "101.00", "client_order_id": client_order_id}
    return request("POST", f"{url}/api/v1/orders/", body, {"Authorization": f"ApiKey {secret}"}, timeout=30)


def _kill_worker_serving(web: Gunicorn) -> None:
    (pid,) = web.workers()
    os.kill(pid, 9)
    assert wait_for(lambda: web.workers() and web.workers() != [pid] and web._answers(), 30), "no new web worker"


def test_a_web_process_killed_mid_request_the_retry_gets_the_one_order(tmp_path):
    desk = desk_prepare()
    buyer_ledger = LedgerAccount.objects.get(client__memberships__user__api_keys__prefix=desk["buyer"].split(".")[0])
    usd = Balance.objects.get(account=buyer_ledger, asset_id="USD")
    redis_server = PrivateRedis(tmp_path / "redis.log")  # the broker: frozen in the second case
    web = Gunicorn(tmp_path / "web.log", base_env(CELERY_BROKER_URL=redis_server.url), workers=1, threads=2)
    pool = ThreadPoolExecutor(2)
    try:
        # 1. Killed before the commit: the placement waits on the buyer's balance row, locked by the test.
        with RowLock(usd) as lock:
            pending = pool.submit(_post, web.url, desk["buyer"], "killed-before-commit")
            assert wait_for(lambda: bool(waiting_on(lock.pid)), 20), "the placement never reached the balance row"
            _kill_worker_serving(web)
            with pytest.raises(OSError):
                pending.result(timeout=20)
        assert not Order.objects.filter(client_order_id="killed-before-commit").exists()  # rolled back
        status, _, retried = _post(web.url, desk["buyer"], "killed-before-commit")
        assert status == 201, retried

        # 2. Killed after the commit, before the answer: the wake-up hangs on a frozen broker.
        redis_server.freeze()
        try:
            pending = pool.submit(_post, web.url, desk["buyer"], "killed-after-commit")
            assert wait_for(lambda: Order.objects.filter(client_order_id="killed-after-commit").exists(), 20)
            assert not pending.done()  # committed, but the client has no answer yet
            _kill_worker_serving(web)
            with pytest.raises(OSError):
                pending.result(timeout=20)
        finally:
            redis_server.thaw()
        stored = Order.objects.get(client_order_id="killed-after-commit")
        status, _, replayed = _post(web.url, desk["buyer"], "killed-after-commit")
        assert status == 201 and replayed["id"] == stored.pk  # the retry gets the one order
    finally:
        pool.shutdown(wait=False)
        web.stop()
        redis_server.stop()

    for client_order_id in ("killed-before-commit", "killed-after-commit"):
        assert Order.objects.filter(client_order_id=client_order_id).count() == 1
    assert Order.objects.count() == 2
    assert_books_consistent(deposited=_deposited(desk))
