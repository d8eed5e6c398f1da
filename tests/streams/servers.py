"""Helpers of the streams tests. The streams face for real: ``manage.py streams_server`` (uvicorn) and ``manage.py streams_relay`` in
subprocesses, on the test database and the test Redis (``TEST_REDIS_URL``: channel layer and wake-ups), spoken
to with the ``websockets`` client. Orders go in over REST in this process (the matcher runs in-process on
commit) and this process numbers the events (``settle``), as the events relay would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from websockets.sync.client import connect

from accounts.models import Role
from events import wakeups
from events.services import sequence_all
from tests.api import api_client_for
from tests.factories import fund
from tests.trading.workers import test_database_url

ROOT = Path(django_settings.BASE_DIR)
PORTS = range(8610, 8620)
STARTUP_SECONDS = 60


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8610-8619")


@pytest.fixture
def streams_redis(settings):
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    settings.EVENTS_REDIS_URL = url  # this process's sequencer wakes the streamer
    wakeups.reset()
    yield url
    wakeups.reset()
    client = redis.Redis.from_url(url)
    for key in client.scan_iter("streams:*"):
        client.delete(key)


class StreamServer:
    def __init__(self, tmp_path: Path, redis_url: str, *, in_memory: bool = False, **env_overrides: str):
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws/v1/"
        env = {**os.environ, "DATABASE_URL": test_database_url(), "SECRET_KEY": django_settings.SECRET_KEY,
               "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_FORMAT": "json",
               "STREAMS_REDIS_URL": redis_url, "EVENTS_REDIS_URL": redis_url,
               **env_overrides}
        for key in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR"):
            env.pop(key, None)
        self.logs = {name: tmp_path / f"{name}.log" for name in ("server", "relay")}
        if in_memory:  # the embedded default's shape: in-memory layer, the streamer inside the ASGI process
            env["STREAMS_REDIS_URL"] = ""
            self.logs["relay"] = self.logs["server"]
        manage = [sys.executable, "manage.py"]
        self.processes = [subprocess.Popen(manage + ["streams_server", "--port", str(self.port)], cwd=ROOT, env=env,
                                           stdout=self.logs["server"].open("w"), stderr=subprocess.STDOUT)]
        if not in_memory:
            self.processes.append(subprocess.Popen(manage + ["streams_relay"], cwd=ROOT, env=env,
                                                   stdout=self.logs["relay"].open("w"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._answers():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.stop()
                raise AssertionError(f"streams did not start:\n{self.log_text()}")
            time.sleep(0.2)
        while "streamer running" not in self.logs["relay"].read_text():
            if time.monotonic() > deadline:
                raise AssertionError(f"streamer did not start:\n{self.log_text()}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with connect(self.url, open_timeout=1):
                return True
        except (OSError, TimeoutError):
            return False
        except Exception:
            return False

    def log_text(self) -> str:
        return "\n".join(f"--- {name}\n{path.read_text()[-5000:]}" for name, path in set(self.logs.items()))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def stream_server(tmp_path, streams_redis, market):
    server = StreamServer(tmp_path, streams_redis)
    yield server
    server.stop()


class Client:
    """A WebSocket client that collects what it receives; ``expect`` waits for a message matching a test."""

    def __init__(self, url: str, *, api_client=None, **kwargs):
        headers = {"Authorization": f"ApiKey {api_client.secret}"} if api_client is not None else None
        self.ws = connect(url, additional_headers=headers, open_timeout=10, **kwargs)
        self.seen: list[dict] = []

    def send(self, **message) -> None:
        self.ws.send(json.dumps(message))

    def expect(self, test, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        for message in self.seen:
            if test(message):
                self.seen.remove(message)
                return message
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                break
            if test(message):
                return message
            self.seen.append(message)
        raise AssertionError(f"no matching message in {timeout}s; seen: {self.seen[-20:]}")

    def of_type(self, kind: str, timeout: float = 10.0, **fields) -> dict:
        return self.expect(lambda m: m.get("type") == kind and all(m.get(k) == v for k, v in fields.items()), timeout)

    def close(self) -> None:
        self.ws.close()


class StalledClient:
    """A client that stops reading: a raw socket with a small receive buffer, spoken to through websockets'
    sans-I/O protocol, so nothing reads behind the test's back (the sync client's reader thread would)."""

    def __init__(self, port: int, *, receive_buffer: int = 4096):
        from websockets.client import ClientProtocol
        from websockets.protocol import State
        from websockets.uri import parse_uri

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws/v1/"))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.state is State.CONNECTING:
            self._read()
        self.texts: list[dict] = []

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _read(self) -> bool:
        data = self.sock.recv(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if getattr(event, "opcode", None) is not None and event.opcode.name == "TEXT":
                self.texts.append(json.loads(event.data))
        self._flush()
        return bool(data)

    def send(self, **message) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self._flush()

    def read_until(self, test) -> dict:
        while True:
            for message in self.texts:
                if test(message):
                    return message
            self._read()

    def read_to_the_end(self):
        """Everything until the server closes: (text messages, the close frame received or None)."""
        while self._read():
            pass
        return self.texts, self.protocol.close_rcvd


def settle() -> None:
    """Number what committed, as the events relay does after every commit."""
    sequence_all()


@pytest.fixture
def seller():
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "BTC", "10")
    return client


def order(client, side: str, size: str, price: str, n: int) -> dict:
    response = client.post("/api/v1/orders/", {"market": "BTC-USD", "side": side, "type": "limit", "size": size,
                                               "price": price, "client_order_id": f"s-{side}-{n}"}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def rest_book(client, depth: int = 200) -> dict:
    return client.get("/api/v1/markets/BTC-USD/book/", {"depth": depth}).json()


