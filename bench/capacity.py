"""End-to-end capacity (issue 15): the highest offered rate of ``POST /api/v1/orders/`` at which the API answers
in time and the matcher keeps up, with everything on this machine (gunicorn, one Celery matcher worker, the events
relay, PostgreSQL, Redis and the load generator).

Reuses ``api_load``'s machinery: gunicorn with ``brokerage/gunicorn_conf.py``, one matcher worker (nice 10) and the
events relay that numbers the orders' events (nice 5, as ``./run`` starts it; ``--no-relay``: without it, as the
first two rounds measured) on production settings (DEBUG unset), a fresh database (``brokerage_bench``, or
DATABASE_URL) and Celery broker (CELERY_BROKER_URL, else REDIS_URL, else Redis db 14; the web's cache on it too, as
deployed), the order mix of
``setup_desk.random_order`` from ``--accounts`` (50) accounts with one API key each, and the open-loop asyncio
client on keep-alive connections with latency from the *scheduled* send time. After one warm-up (not measured) it
steps the offered rate through ``--rates``, ``--seconds`` each, and stops after two steps in a row fail the capacity
conditions (``--all-steps``: runs them all). Every request of a step is built before the step starts, so the
generator only sends and reads.

Per step: offered and completed rate (orders answered 201 per second, from the first scheduled send to the last
answer), status counts, latency p50 / p99 / p99.9 / max, matcher lag (from the last answer until no order is left
``new``: every order matched and settled; the next step starts only then), CPU ms per completed order of each
component from /proc over the step and its drain (web: the gunicorn tree; PostgreSQL: every process of the local
cluster, the postmaster's tree; matcher: the Celery worker tree; events relay: its process; Redis: redis-server;
the load generator: this process), and the machine's idle share (/proc/stat). PostgreSQL, Redis and the machine are shared: whatever else
runs on them counts, so measure on a quiet machine.

A step passes when p99 < 50 ms (``--p99-ms``: a batch of 50 orders is one request carrying 50 placements, so
batch runs state their own bound), completed >= 98% of offered, no answer is outside 2xx and the matcher lag is
<= 1 s. Printed last: the capacity (the highest passing step's offered rate), the first failing step and why, and
the p99 at 500 orders/s against the issue's 25 ms target.

``--batch N`` sends N orders per request to ``POST /api/v1/orders/batch/`` (the offered rate still counts orders:
rate / N requests per second; latency is per request; completed counts the orders answered 201 inside the
results), reported as a batch run. All requests come from 127.0.0.1, so the per-IP throttle (12,000/min by
default: 200 requests/s from one address) is raised for the run (``API_IP_THROTTLE_RATE``; a real deployment's
clients come from many addresses); per-key and per-account throttles stay as configured.

Run: .venv/bin/python bench/capacity.py [--rates 200,300,400,500,600,800,1000,1200] [--seconds 10] [--all-steps]
         [--batch N] [--no-relay] [--web-workers 3] [--threads 4] [--worker-nice 10] [--accounts 50] [--port 8767]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass

os.environ.setdefault("CELERY_BROKER_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
os.environ.setdefault("API_IP_THROTTLE_RATE", "10000000/min")  # every request comes from 127.0.0.1

import api_load  # noqa: E402 - after the environment it reads
from common import django_setup, percentile, report, trees_cpu_seconds  # noqa: E402

P99_LIMIT_MS = 50  # per request; --p99-ms changes it (a 50-order batch request carries 50 placements)
COMPLETED_SHARE = 0.98
MATCHER_LAG_LIMIT_S = 1.0
SATURATED_AFTER = 2  # failing steps in a row
TARGET_RATE, TARGET_P99_MS = 500, 25  # issue 15: p99 < 25 ms at 500 orders/s
DRAIN_TIMEOUT_S = 120
COMPONENTS = ("web", "PostgreSQL", "matcher", "events relay", "Redis", "load generator")


@dataclass
class Load:
    offered: float  # orders/s
    orders: int
    completed: int  # orders answered 201
    elapsed: float  # from the first scheduled send to the last answer
    latencies: list[float]
    statuses: Counter  # HTTP
    order_statuses: Counter  # batch runs: the status of each order inside the results


@dataclass
class Step(Load):
    matcher_lag: float  # seconds
    cpu_ms: dict[str, float]  # per completed order
    idle_share: float  # of the machine's cores
    p99_limit_ms: float = P99_LIMIT_MS

    @property
    def completed_rate(self) -> float:
        return self.completed / self.elapsed

    def failures(self) -> list[str]:
        """Why the step fails the capacity conditions (none: it passes)."""
        reasons = []
        p99 = percentile(self.latencies, 99)
        if not p99 < self.p99_limit_ms:
            reasons.append(f"p99 {p99:.1f} ms >= {self.p99_limit_ms:g} ms")
        if self.completed_rate < COMPLETED_SHARE * self.offered:
            reasons.append(f"completed {self.completed_rate:,.0f}/s < {COMPLETED_SHARE:.0%} of {self.offered:g}/s")
        errors = {code: n for code, n in (self.statuses + self.order_statuses).items() if not 200 <= code < 300}
        if errors:
            reasons.append("answers outside 2xx: " + statuses_text(errors))
        if self.matcher_lag > MATCHER_LAG_LIMIT_S:
            reasons.append(f"matcher lag {self.matcher_lag:.2f} s > {MATCHER_LAG_LIMIT_S:.0f} s")
        return reasons


def statuses_text(statuses: dict[int, int]) -> str:
    return ", ".join(f"{code}: {count:,}" for code, count in sorted(statuses.items())) or "none"


# --- what each component spends ---------------------------------------------------------------------------------


def process_parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def watched_pids(processes) -> dict[str, int]:
    """The root process of each server component; PostgreSQL and Redis must run on this machine."""
    import redis
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    redis_pid = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).info("server")["process_id"]
    try:
        postmaster = process_parent(backend)
        os.stat(f"/proc/{redis_pid}")
    except OSError:
        raise SystemExit("PostgreSQL and Redis must run on this machine: their CPU is read from /proc") from None
    pids = {"web": processes[0].pid, "PostgreSQL": postmaster, "matcher": processes[1].pid, "Redis": redis_pid}
    if len(processes) > 2:
        pids["events relay"] = processes[2].pid
    return pids


def machine_idle() -> tuple[int, int]:
    """(idle, total) clock ticks of all cores so far, from /proc/stat (iowait counts as idle)."""
    with open("/proc/stat") as f:
        ticks = [int(field) for field in f.readline().split()[1:9]]
    return ticks[3] + ticks[4], sum(ticks)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    return {**trees_cpu_seconds(pids), "load generator": time.process_time()}


# --- the load ---------------------------------------------------------------------------------------------------


def step_messages(headers: list[str], rng: random.Random, prefix: str, requests: int, batch: int | None) -> list[bytes]:
    """Every request of a step, built before it starts: the generator shares the cores it measures."""
    messages = []
    for i in range(requests):
        if batch is None:
            path, body = "/api/v1/orders/", api_load.order_body(rng, f"{prefix}-{i}")
        else:
            path, body = "/api/v1/orders/batch/", {"orders": [api_load.order_body(rng, f"{prefix}-{i}-{j}")
                                                              for j in range(batch)]}
        messages.append(api_load.LoadClient.message("POST", path, headers[i % len(headers)], body))
    return messages


def batch_statuses(body: bytes) -> list[int]:
    """The status of each order in a ``POST /api/v1/orders/batch/`` answer (HTTP 200)."""
    try:
        return [result["status"] for result in json.loads(body)["results"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a batch answer: {body[:200]!r}") from exc


def sender(messages: list[bytes], order_statuses: Counter | None):
    async def send(client: api_load.LoadClient, i: int) -> int:
        status, body = await client.send(messages[i])
        if order_statuses is not None and status == 200:
            order_statuses.update(batch_statuses(body))
        return status
    return send


def load_run(headers, rng, prefix: str, offered: float, seconds: int, batch: int | None) -> Load:
    """Offer ``offered`` orders/s for ``seconds``, one order per ``POST /orders/`` or ``batch`` per batch request."""
    per_request = batch or 1
    requests = int(offered / per_request * seconds)  # as many as open_loop sends
    messages = step_messages(headers, rng, prefix, requests, batch)
    order_statuses = Counter()
    latencies, statuses, elapsed, _ = api_load.open_loop(
        sender(messages, order_statuses if batch else None), offered / per_request, seconds)
    statuses = Counter(statuses)
    completed = order_statuses[201] if batch else statuses[201]
    return Load(offered, requests * per_request, completed, elapsed, latencies, statuses, order_statuses)


def step_run(pids, headers, rng, offered: float, seconds: int, batch: int | None, p99_limit_ms: float) -> Step:
    idle0, total0 = machine_idle()
    cpu0 = cpu_seconds(pids)
    load = load_run(headers, rng, f"step-{offered:g}", offered, seconds, batch)
    lag = api_load.matcher_drained(timeout=DRAIN_TIMEOUT_S)
    cpu1 = cpu_seconds(pids)
    idle1, total1 = machine_idle()
    cpu_ms = {name: (cpu1[name] - cpu0[name]) * 1000 / max(load.completed, 1) for name in COMPONENTS if name in cpu0}
    return Step(**vars(load), matcher_lag=lag, cpu_ms=cpu_ms, idle_share=(idle1 - idle0) / (total1 - total0),
                p99_limit_ms=p99_limit_ms)


# --- the report -------------------------------------------------------------------------------------------------


def step_figures(step: Step, batch: int | None) -> dict[str, str]:
    lat = step.latencies
    cpu = ", ".join(f"{name} {ms:.2f}" for name, ms in step.cpu_ms.items())
    return {
        "completed": f"{step.completed:,} of {step.orders:,} orders in {step.elapsed:.1f}s = "
                     f"{step.completed_rate:,.0f} orders/s ({step.completed_rate / step.offered:.1%} of offered)",
        "status codes" if batch is None else "HTTP status codes": statuses_text(step.statuses),
        **({} if batch is None else {"order statuses (in the results)": statuses_text(step.order_statuses)}),
        "latency p50 / p99 / p99.9 / max": f"{percentile(lat, 50):.1f} / {percentile(lat, 99):.1f} / "
                                           f"{percentile(lat, 99.9):.1f} / {max(lat):.1f} ms"
                                           + ("" if batch is None else " per request"),
        "matcher lag": f"{step.matcher_lag:.2f} s after the last answer",
        "CPU ms per order": f"{cpu}; total {sum(step.cpu_ms.values()):.2f}" if step.completed else "no order completed",
        "machine idle": f"{step.idle_share:.0%} ({(1 - step.idle_share) * os.cpu_count():.2f} of "
                        f"{os.cpu_count()} cores busy)",
        "capacity conditions": "; ".join(step.failures()) or "met",
    }


def capacity_lines(steps: list[Step], batch: int | None) -> list[str]:
    passed = [step.offered for step in steps if not step.failures()]
    failed = [step for step in steps if step.failures()]
    at_target = [step for step in steps if step.offered == TARGET_RATE]
    run = "single orders" if batch is None else f"batch run, {batch} orders per request"
    lines = [f"capacity: {max(passed):g} orders/s ({run})" if passed
             else f"capacity: below {steps[0].offered:g} orders/s ({run}): no step passed"]
    lines.append(f"first failing step: {failed[0].offered:g} orders/s: " + "; ".join(failed[0].failures()) if failed
                 else f"first failing step: none up to {steps[-1].offered:g} orders/s")
    if at_target:
        p99 = percentile(at_target[0].latencies, 99)
        verdict = "met" if p99 < TARGET_P99_MS else "not met"
        per = "" if batch is None else " per request"
        lines.append(f"p99 at {TARGET_RATE} orders/s: {p99:.1f} ms{per} "
                     f"(issue 15's target < {TARGET_P99_MS} ms: {verdict})")
    else:
        lines.append(f"p99 at {TARGET_RATE} orders/s: not measured (not in --rates, or the sweep stopped before it)")
    return lines


def rates_list(text: str) -> list[float]:
    """``--rates``: comma-separated rates above zero (argparse reports anything else as the option's error)."""
    rates = [float(rate) for rate in text.split(",")]
    if min(rates) <= 0:
        raise argparse.ArgumentTypeError("rates must be above zero")
    return rates


def batch_size(text: str) -> int:
    if not 1 <= int(text) <= 50:
        raise argparse.ArgumentTypeError("a batch carries 1 to 50 orders")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", type=rates_list,
                        default=[200, 300, 400, 500, 600, 800, 1000, 1200], help="orders/s offered, step by step")
    parser.add_argument("--seconds", type=int, default=10, help="per step")
    parser.add_argument("--all-steps", action="store_true", help="do not stop once two steps in a row fail")
    parser.add_argument("--batch", type=batch_size, metavar="N",
                        help="N orders (1-50) per request to POST /api/v1/orders/batch/")
    parser.add_argument("--p99-ms", type=float, default=P99_LIMIT_MS,
                        help="the capacity condition's bound on p99 latency per request (issue 15: 50 ms)")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--no-relay", action="store_true",
                        help="without the events relay that ./run starts (the first two rounds' figures ran so)")
    api_load.server_options(parser)
    args = parser.parse_args()
    api_load.PORT = args.port
    django_setup()
    headers = api_load.desk_prepare(args.accounts)
    processes = api_load.server_start(args.web_workers, args.threads, matcher=True, worker_nice=args.worker_nice,
                                      server=args.server, relay=not args.no_relay)
    rng = random.Random(7)
    endpoint = "POST /api/v1/orders/" if args.batch is None else f"POST /api/v1/orders/batch/, {args.batch} per request"
    try:
        pids = watched_pids(processes)
        # Warm-up, not measured: each web thread opens its connections, the matcher builds its book.
        load_run(headers, rng, "warm-up", args.rates[0], api_load.WARM_UP_SECONDS, args.batch)
        api_load.matcher_drained(timeout=DRAIN_TIMEOUT_S)
        steps, failing = [], 0
        for offered in args.rates:
            steps.append(step_run(pids, headers, rng, offered, args.seconds, args.batch, args.p99_ms))
            report(f"{offered:g} orders/s offered for {args.seconds} s ({endpoint})",
                   step_figures(steps[-1], args.batch))
            failing = failing + 1 if steps[-1].failures() else 0
            if failing == SATURATED_AFTER and not args.all_steps:
                break
        relay = "no events relay" if args.no_relay else "the events relay (nice 5)"
        print(f"== {args.server} {args.web_workers} workers x {args.threads} threads, 1 matcher worker "
              f"(nice {args.worker_nice}), {relay}, {args.accounts} accounts")
        print("\n".join(capacity_lines(steps, args.batch)))
    finally:
        api_load.server_stop(processes)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
