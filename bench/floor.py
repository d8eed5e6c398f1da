"""The floor under issue 15's capacity: what a request costs on this machine before any of the API's work.

Two targets, each served by gunicorn with the API's settings (``brokerage/gunicorn_conf.py``, 3 x 4 threads) and
loaded by ``capacity.py``'s open-loop client from the same machine:

- ``bare``: a WSGI function that answers ``{"status": "ok"}`` (``floor_app.py``): the server and the client alone;
- ``healthz``: Django's ``/healthz`` with production settings: the middleware chain and a JSON response, no
  database, no DRF, no Redis.

For each offered rate it prints the completed rate, p50/p99 and the CPU per request of the web processes and of
the load generator. ``POST /orders`` pays this floor and then authentication, the throttle, validation, the
placement's statements, PostgreSQL and the matcher (``capacity.py`` prints those).

Run: .venv/bin/python bench/floor.py [--rates 600,1000] [--seconds 10] [--targets bare,healthz]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from api_load import PORT, LoadClient, open_loop, server_stop, serving, web_command
from capacity import machine_idle, rates_list
from common import ROOT, percentile, report, tree_cpu_seconds

TARGETS = {
    "bare": ("floor_app:application", "/"),
    "healthz": ("brokerage.wsgi", "/healthz"),
}


def web_start(target: str, workers: int, threads: int) -> subprocess.Popen:
    if serving():  # another bench's server: its figures would be taken for ours
        raise SystemExit(f"port {PORT} is already in use")
    app, _ = TARGETS[target]
    command = [app if part == "brokerage.wsgi" else part for part in web_command("gunicorn", workers, threads)]
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'bench'}", LOG_LEVEL="WARNING", ALLOWED_HOSTS="127.0.0.1",
               SECURE_SSL_REDIRECT="0", SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only"))
    log = open("/tmp/bench-floor.log", "w")
    web = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        if serving():
            return web
        time.sleep(0.2)
    raise SystemExit("gunicorn did not start; see /tmp/bench-floor.log")


def getter(path: str):
    """``open_loop``'s request: ``GET path``, answering its status."""
    message = LoadClient.message("GET", path, "none", None)

    async def get(client: LoadClient, i: int) -> int:
        status, _ = await client.send(message)
        return status

    return get


def step(web: subprocess.Popen, path: str, rate: float, seconds: int) -> dict[str, str]:
    web_cpu, (idle0, total0) = tree_cpu_seconds(web.pid), machine_idle()
    latencies, statuses, elapsed, client_cpu_ms = open_loop(getter(path), rate, seconds)
    web_ms = (tree_cpu_seconds(web.pid) - web_cpu) * 1000 / len(latencies)
    idle1, total1 = machine_idle()
    return {
        "completed": f"{len(latencies):,} in {elapsed:.1f}s = {len(latencies) / elapsed:,.0f} req/s "
                     f"({len(latencies) / elapsed / rate:.1%} of offered); status {sorted(statuses.items())}",
        "latency p50 / p99": f"{percentile(latencies, 50):.1f} / {percentile(latencies, 99):.1f} ms",
        "CPU ms per request": f"web {web_ms:.2f}, load generator {client_cpu_ms:.2f}; "
                              f"total {web_ms + client_cpu_ms:.2f}",
        "machine idle": f"{100 * (idle1 - idle0) / max(1, total1 - total0):.0f}%",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", type=rates_list, default=[600, 1000], help="requests/s offered, step by step")
    parser.add_argument("--seconds", type=int, default=10, help="per step")
    parser.add_argument("--targets", default="bare,healthz", help=f"comma-separated: {', '.join(TARGETS)}")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    targets = args.targets.split(",")
    unknown = [target for target in targets if target not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; choose from {list(TARGETS)}")
    for target in targets:
        web = web_start(target, args.web_workers, args.threads)
        try:
            path = TARGETS[target][1]
            open_loop(getter(path), args.rates[0], 2)  # warm-up, not measured
            for rate in args.rates:
                report(f"{target} (GET {path}): {rate:g} req/s offered for {args.seconds} s, gunicorn "
                       f"{args.web_workers} x {args.threads} threads", step(web, path, rate, args.seconds))
        finally:
            server_stop([web])


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
