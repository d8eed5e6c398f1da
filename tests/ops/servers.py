"""Real processes for the operations tests: gunicorn, Celery beat, and PRIVATE Redis and PostgreSQL instances
that a test may stop, freeze or restart (the shared servers on 6379/5432 are never touched).

Ports come from ``OPS_TEST_PORTS`` (default 18100-18199), loopback only. Every process is bounded: started
with a deadline to become ready and stopped (terminate, then kill) by the fixture that made it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings as django_settings

from tests.trading.workers import test_database_url, wait_for

ROOT = Path(django_settings.BASE_DIR)
PG_BIN = Path(os.environ.get("PG_BIN") or (sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or
                                            [Path("/usr/lib/postgresql/15/bin/initdb")])[-1].parent)
STARTUP_SECONDS = 60


def port_range() -> range:
    low, _, high = os.environ.get("OPS_TEST_PORTS", "18100-18199").partition("-")
    return range(int(low), int(high) + 1)


def free_port() -> int:
    for port in port_range():
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in OPS_TEST_PORTS")


def base_env(**overrides: str | None) -> dict[str, str]:
    """The environment of a server process: the test database, DEBUG off, JSON logs; ``None`` removes a key."""
    env = {**os.environ, "DATABASE_URL": test_database_url(), "SECRET_KEY": django_settings.SECRET_KEY,
           "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_FORMAT": "json", "DB_CONN_MAX_AGE": "60"}
    for key in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(key, None)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def stop(process: subprocess.Popen, *, timeout: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Gunicorn:
    """``gunicorn brokerage.wsgi`` on a free port (the project's gunicorn_conf), logging to ``log``."""

    def __init__(self, log: Path, env: dict[str, str], *, workers: int = 2, threads: int = 4, timeout: int = 30):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**env, "WEB_CONCURRENCY": str(workers), "WEB_THREADS": str(threads)}
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "python:brokerage.gunicorn_conf", "brokerage.wsgi",
                 "--bind", f"127.0.0.1:{self.port}", "--timeout", str(timeout), "--graceful-timeout", "5"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        if not wait_for(lambda: self._answers() or self.process.poll() is not None, STARTUP_SECONDS):
            raise AssertionError(f"gunicorn did not start:\n{log.read_text()}")
        assert self.process.poll() is None, log.read_text()

    def _answers(self) -> bool:
        try:
            return request("GET", self.url + "/healthz", timeout=1)[0] == 200
        except OSError:
            return False

    def workers(self) -> list[int]:
        """The pids of the master's worker processes."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def stop(self) -> None:
        stop(self.process)


def request(method: str, url: str, body: dict | None = None, headers: dict | None = None,
            timeout: float = 10) -> tuple[int, dict, dict | str]:
    """One HTTP request on a new connection: (status, headers, JSON body or text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, raw, response_headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, response_headers = exc.code, exc.read(), dict(exc.headers)
    text = raw.decode()
    try:
        return status, response_headers, json.loads(text)
    except ValueError:
        return status, response_headers, text


def celery_process(kind: str, log: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    """``celery -A brokerage <kind> ...`` (``beat`` or ``worker``) logging to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "celery", "-A", "brokerage", kind, "--loglevel=INFO", *args],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def worker_args(name: str) -> list[str]:
    return ["--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n",
            f"{name}-{os.getpid()}@%h"]


class PrivateRedis:
    """``redis-server`` on a port of our range, no persistence. ``stop()``/``start()`` keep the port."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = log
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--daemonize", "no"], stdout=out, stderr=subprocess.STDOUT)
        assert wait_for(self.ping, 20), self.log.read_text()

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary directory, run as the ``postgres`` user) on a port
    of our range, so a test can stop and restart it under load. ``fsync`` off: it holds only test data."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="f17-pg-"))
        self.data = self.dir / "data"
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                           "-E", "UTF8", "--no-sync"])
        self.start()

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def _as_postgres(self, argv: list[str], *, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run(prefix + argv, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self) -> None:
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w",
                           "-t", "30", "start", "-o",
                           f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
                           "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"])

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "stop", "-m", mode])

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except AssertionError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
