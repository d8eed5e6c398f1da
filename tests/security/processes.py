"""Running ``manage.py`` in a child process with a chosen environment: settings are read once at start-up, so
testing what the environment turns on (DEBUG, HTTPS, the demo opt-in) needs a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Whatever ./test or the caller set that would change what is being tested.
CLEARED = ("DEBUG", "DEMO_DATA", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL",
           "CACHE_URL", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
           "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER",
           "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")
PRODUCTION_SECRET = "k3-" + "x7Qp2Lm9Rt4Vw8Zc1Bn6Hj0Fd5Sg3Ka" * 2  # 67 characters, many distinct


def environment(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return {**base, "LOG_LEVEL": "INFO", **env}


def manage(*args: str, env: dict[str, str], check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def settings_of(names: list[str], env: dict[str, str]) -> dict:
    """The values of settings ``names`` as a process started with ``env`` reads them."""
    code = ("import json; from django.conf import settings; "
            f"print(json.dumps({{n: getattr(settings, n, None) for n in {names!r}}}, default=str))")
    out = manage("shell", "-c", code, env=env).stdout
    import json

    return json.loads(out.strip().splitlines()[-1])
