"""A private RabbitMQ node for tests that stop and restart the broker (the shared one on 5672 is never touched):
its own node name, ports in this worktree's range, data and logs in a temporary directory, no plugins."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager

NODE = "rabbit_events_test@localhost"
PORT = int(os.environ.get("EVENTS_TEST_RABBITMQ_PORT", "18472"))
START_SECONDS = 90


def _env(base: str) -> dict:
    return {
        **os.environ,
        "RABBITMQ_NODENAME": NODE,
        "RABBITMQ_NODE_PORT": str(PORT),
        "RABBITMQ_DIST_PORT": str(PORT + 1),
        "RABBITMQ_MNESIA_BASE": f"{base}/mnesia",
        "RABBITMQ_LOG_BASE": f"{base}/log",
        "RABBITMQ_ENABLED_PLUGINS_FILE": f"{base}/enabled_plugins",
        "RABBITMQ_CONFIG_FILE": f"{base}/rabbitmq",  # not /etc/rabbitmq's, which listens on 5672
    }


def ctl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", "-n", NODE, *args], capture_output=True, text=True, timeout=timeout)


def _wait_started(deadline: float) -> None:
    while time.monotonic() < deadline:
        if ctl("await_startup", "--timeout", "5", timeout=20).returncode == 0:
            return
        time.sleep(0.5)
    raise TimeoutError(f"RabbitMQ node {NODE} did not start")


@contextmanager
def private_rabbitmq():
    """Start the node, yield its AMQP URL, stop it and remove its files (bounded in time)."""
    if shutil.which("rabbitmq-server") is None:
        raise RuntimeError("rabbitmq-server is not installed (scripts/ci-system-deps.sh installs it)")
    base = tempfile.mkdtemp(prefix="rabbitmq-events-test-")
    for sub in ("mnesia", "log"):
        os.makedirs(f"{base}/{sub}")
    with open(f"{base}/enabled_plugins", "w") as f:
        f.write("[].\n")
    with open(f"{base}/rabbitmq.conf", "w") as f:
        f.write(f"listeners.tcp.local = 127.0.0.1:{PORT}\n")
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", base], check=True)
    env = _env(base)
    ctl("stop", timeout=30)  # a node left over by a killed test run
    subprocess.run(["rabbitmq-server", "-detached"], env=env, check=True, timeout=60)
    try:
        _wait_started(time.monotonic() + START_SECONDS)
        yield f"amqp://guest:guest@127.0.0.1:{PORT}/"
    finally:
        ctl("stop", timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def restart_app(pause: float = 1.0) -> None:
    """``rabbitmqctl stop_app`` then ``start_app``: the broker goes away and comes back with its durable data."""
    assert ctl("stop_app").returncode == 0
    time.sleep(pause)
    assert ctl("start_app").returncode == 0
    _wait_started(time.monotonic() + START_SECONDS)
