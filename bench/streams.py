"""WebSocket streams under load (README "Streams"): fan-out latency from a book change's commit to its receipt by
100 subscribers while a real matcher settles orders placed at a steady rate, then how many messages per second
one ASGI server process pushes.

Runs: a fresh database (``brokerage_bench``, or DATABASE_URL), Redis (BENCH_REDIS_URL, default db 14) for Celery,
wake-ups and the channel layer; one matcher worker, the events relay (sequencer only), the streamer
(``streams_relay``) and one ASGI server (``streams_server``) as ./run starts them; the subscribers (asyncio
``websockets`` clients) in a separate process.

Phase 1, latency: SUBSCRIBERS clients on level2 + matches of BTC-USD; orders at --rate for --seconds. Latency is
receipt time minus the ``time`` of each ``l2update`` (written just before the batch commits), over every client.
Phase 2, push rate: --burst book changes of 10 levels each committed at once (``book.changed`` events, as a
matcher batch writes them, numbered by the sequencer in one pass), and the time from the first receipt to the last
over every client: messages per second one streamer and one server process deliver (the subscribers' process,
parsing every message, is on the same two cores and may be the limit).

Run: .venv/bin/python bench/streams.py [--rate 200] [--seconds 20] [--subscribers 100] [--burst 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

from common import ROOT, django_setup, fresh_database, percentile, report, tree_cpu_seconds

REDIS_URL = os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
for name in ("CELERY_BROKER_URL", "EVENTS_REDIS_URL", "STREAMS_REDIS_URL"):
    os.environ.setdefault(name, REDIS_URL)
os.environ.setdefault("STREAMS_MAX_CONNECTIONS_PER_IP", "10000")  # every subscriber comes from 127.0.0.1
PORT = int(os.environ.get("BENCH_STREAMS_PORT", "18430"))
STREAMER_NICE = int(os.environ.get("BENCH_STREAMER_NICE", "0"))  # as ./run starts it


def _parse(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- the subscribers' process ---------------------------------------------------------------------------------


async def subscriber(url: str, results: dict, ready: asyncio.Event, count: list) -> None:
    import websockets

    async with websockets.connect(url, max_queue=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["level2", "matches"], "markets": ["BTC-USD"]}))
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            kind = message["type"]
            if kind == "snapshot":
                count[0] += 1
                if count[0] == results["clients"]:
                    ready.set()
            elif kind == "l2update":
                results["received"] += 1
                results["first"] = results["first"] or now
                results["last"] = now
                if results["measure"]:
                    results["lags"].append((now - _parse(message["time"])) * 1000)
            elif kind == "match":
                results["received"] += 1


async def subscribers_main(url: str, clients: int) -> None:
    """Connect ``clients``, print "ready", then on each line from stdin ("count", "reset", "stop") answer with a
    JSON line of what was received so far ("reset": then start again from nothing)."""
    results = {"clients": clients, "received": 0, "lags": [], "first": None, "last": None, "measure": True}
    ready, count = asyncio.Event(), [0]
    tasks = [asyncio.create_task(subscriber(url, results, ready, count)) for _ in range(clients)]
    await asyncio.wait_for(ready.wait(), 120)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        print(json.dumps({k: results[k] for k in ("received", "lags", "first", "last")}), flush=True)
        if line == "reset":
            results.update(received=0, lags=[], first=None, last=None)
        if line in ("stop", ""):
            break
    for task in tasks:
        task.cancel()


# --- the bench ---------------------------------------------------------------------------------------------


def process_start(args: list[str], log: str, nice: int = 0, **env_overrides: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_overrides)
    prefix = ["nice", "-n", str(nice)] if nice else []
    return subprocess.Popen(prefix + args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def ask(process: subprocess.Popen, line: str) -> dict:
    process.stdin.write(line + "\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def book_burst(market_id: int, count: int, levels: int) -> None:
    from django.db import transaction
    from django.db.models import F

    from events.services import NewEvent, events_record
    from events.types import BOOK_CHANGED
    from trading.models import Market

    with transaction.atomic():  # one commit: the sequencer numbers them in one pass, the streamer sends at full speed
        Market.objects.filter(pk=market_id).update(match_seq=F("match_seq") + count)
        market = Market.objects.get(pk=market_id)
        first = market.book_sequence - count + 1
        events = []
        for n in range(count):
            changes = [[50_000_000 + n * levels + i, "sell", f"{90000 + (n * levels + i) % 5000}.00", "0.1"]
                       for i in range(levels)]
            events.append(NewEvent(BOOK_CHANGED, None, {"sequence": first + n, "orders": changes, "reset": False},
                                   market_id))
        events_record(events)


def numbered_lag(since: float) -> tuple[float, float]:
    """p50, p99 of write -> numbered (the sequencer's share) for the book changes written since ``since``."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d)"
            " FROM (SELECT extract(epoch FROM q.sequenced_at - e.created_at) * 1000 AS d FROM events_sequenced q"
            " JOIN events_event e ON e.id = q.event_id WHERE e.type = 'book.changed'"
            " AND e.created_at >= to_timestamp(%s)) AS x", [since])
        return cursor.fetchone()


def wait_until_up(timeout: float = 180) -> None:
    """On a loaded machine the worker can take a minute to start: wait for it to answer, and for the streamer."""
    from brokerage.celery import app

    deadline = time.time() + timeout
    while not app.control.ping(timeout=1):
        if time.time() > deadline:
            raise SystemExit("the matcher worker did not start; see /tmp/bench-streams-worker.log")
    while "streamer running" not in open("/tmp/bench-streams-streamer.log").read():
        if time.time() > deadline:
            raise SystemExit("the streamer did not start; see /tmp/bench-streams-streamer.log")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--burst", type=int, default=2000)
    args = parser.parse_args()
    django_setup()
    fresh_database()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    from matching import run_parallel
    from setup_desk import desk_create

    market_id, account_ids = desk_create(accounts=args.accounts)
    manage = [sys.executable, "manage.py"]
    processes = [
        process_start([str(ROOT / ".venv/bin/celery"), "-A", "brokerage", "worker", "--concurrency", "1",
                       "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                      "/tmp/bench-streams-worker.log", nice=10),
        process_start(manage + ["events_relay", "--channels", "sequence"], "/tmp/bench-streams-relay.log", nice=5),
        process_start(manage + ["streams_relay"], "/tmp/bench-streams-streamer.log", nice=STREAMER_NICE,
                      LOG_LEVEL="INFO"),
        process_start(manage + ["streams_server", "--port", str(PORT)], "/tmp/bench-streams-server.log"),
    ]
    wait_until_up()
    clients = subprocess.Popen([sys.executable, __file__, "--subscribers-process", str(args.subscribers)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert clients.stdout.readline().strip() == "ready", "the subscribers did not connect"
        ask(clients, "reset")
        watched = {"server": processes[3].pid, "streamer": processes[2].pid, "subscribers": clients.pid}
        cpu0 = {name: tree_cpu_seconds(pid) for name, pid in watched.items()}
        started = time.time()
        accepted = run_parallel(market_id, account_ids, int(args.rate * args.seconds), args.processes,
                                rate=args.rate, seed=7)
        placing = time.time() - started
        time.sleep(3)  # the tail
        phase1 = ask(clients, "reset")
        numbered = numbered_lag(started)
        cpu1 = {name: tree_cpu_seconds(pid) for name, pid in watched.items()}

        started = time.time()
        book_burst(market_id, args.burst, levels=10)
        writing = time.time() - started
        deadline = time.time() + 120
        expected = args.burst * args.subscribers
        while ask(clients, "count")["received"] < expected and time.time() < deadline:
            time.sleep(0.5)
        cpu2 = {name: tree_cpu_seconds(pid) for name, pid in watched.items()}
        phase2 = ask(clients, "stop")
    finally:
        clients.kill()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(30)
    lags = phase1["lags"]
    report(f"streams: {args.subscribers} subscribers on level2 + matches, {args.rate:.0f} orders/s offered", {
        "orders placed": f"{len(accepted):,} in {placing:.1f}s ({len(accepted) / placing:,.0f}/s)",
        "l2update commit -> receipt p50": f"{percentile(lags, 50):.0f} ms",
        "l2update commit -> receipt p99": f"{percentile(lags, 99):.0f} ms",
        "of which write -> numbered p50 / p99": f"{numbered[0]:.0f} / {numbered[1]:.0f} ms (the sequencer)",
        "l2updates received (all clients)": f"{len(lags):,} ({len(lags) / args.subscribers:,.0f} per client)",
        "messages received (all clients)": f"{phase1['received']:,}",
        "CPU s: server / streamer / clients": " / ".join(f"{cpu1[n] - cpu0[n]:.1f}" for n in watched),
    })
    span = (phase2["last"] or 0) - (phase2["first"] or 0)
    report(f"push rate: {args.burst:,} book changes x {args.subscribers} subscribers", {
        "book changes written": f"{args.burst:,} in {writing:.1f}s",
        "messages delivered": f"{phase2['received']:,} of {expected:,}",
        "first -> last receipt": f"{span:.1f}s",
        "messages/s pushed by 1 server process": f"{phase2['received'] / span:,.0f}" if span else "-",
        "CPU s: server / streamer / clients": " / ".join(f"{cpu2[n] - cpu1[n]:.1f}" for n in watched),
        "server CPU per message delivered":
            f"{(cpu2['server'] - cpu1['server']) / max(phase2['received'], 1) * 1e6:.0f} us",
    })


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    if len(sys.argv) == 3 and sys.argv[1] == "--subscribers-process":
        asyncio.run(subscribers_main(f"ws://127.0.0.1:{PORT}/ws/v1/", int(sys.argv[2])))
    else:
        main()
