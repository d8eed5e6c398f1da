"""What the issue 18 request layers cost an API call: the same requests in-process (Django's test client, no
network) with and without the middleware added for security: the Content-Security-Policy header (django-csp),
django-otp's verified user, the staff session lifetimes and django-axes' lockout response.

    .venv/bin/python bench/security_overhead.py --requests 3000 --rounds 3

Each round times ``GET /api/v1/balances/`` and ``POST /api/v1/orders/`` (API key, no matcher) with both stacks,
alternating, and prints the median and p99 per request of each; on a shared machine their difference drowns in
noise, so the script also times the four layers alone, CPU time per request around a view that does nothing
(an API-key request: no session cookie). The matcher's hot path has no new work (a successful batch never enters
the isolation code), so it is not timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import django_setup, fresh_database, percentile, report

SECURITY_MIDDLEWARE = (
    "core.security_middleware.SessionOtpMiddleware",
    "core.security_middleware.StaffSessionMiddleware",
    "core.security_middleware.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
)


def timed(client, requests: int, call) -> list[float]:
    timings = []
    for i in range(requests):
        started = time.perf_counter()
        response = call(client, i)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 201), response.content[:300]
    return timings


def layers_alone(calls: int) -> float:
    """CPU microseconds per request spent in the security middleware alone, around a view that does nothing."""
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.http import JsonResponse
    from django.test import RequestFactory
    from django.utils.module_loading import import_string

    def chain(paths):
        handler = lambda request: JsonResponse({"ok": True})  # noqa: E731
        for path in reversed(paths):
            handler = import_string(path)(handler)
        return handler

    base = [SessionMiddleware, AuthenticationMiddleware]
    plain, secured = chain([]), chain(list(SECURITY_MIDDLEWARE))
    factory = RequestFactory()
    figures = {}
    for name, handler in (("plain", plain), ("secured", secured)):
        request = factory.get("/api/v1/balances/", HTTP_AUTHORIZATION="ApiKey x.y")
        for middleware in base:
            middleware(lambda r: None)(request)  # request.session and the lazy request.user, as the stack has
        started = time.process_time()
        for _ in range(calls):
            handler(request)
        figures[name] = (time.process_time() - started) / calls * 1e6
    return figures["secured"] - figures["plain"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    django_setup()
    alone = [layers_alone(20000) for _ in range(5)]
    report("the four security layers alone (CPU per request, API key, no session)", {
        "microseconds, 5 rounds": ", ".join(f"{us:.1f}" for us in alone),
        "median": f"{statistics.median(alone):.1f} us",
    })
    fresh_database()
    from django.conf import settings
    from django.test import Client, override_settings
    from setup_desk import api_keys_create, desk_create, random_order

    _, account_ids = desk_create(accounts=20)
    headers = api_keys_create(account_ids=account_ids)
    without = [m for m in settings.MIDDLEWARE if m not in SECURITY_MIDDLEWARE]
    stacks = {"with security middleware": list(settings.MIDDLEWARE), "without": without}
    import random

    rng = random.Random(7)
    counter = iter(range(10**9))

    def balances(client, i):
        return client.get("/api/v1/balances/", HTTP_AUTHORIZATION=headers[i % len(headers)])

    def orders(client, i):
        order = {k: str(v) for k, v in random_order(rng).items()}
        return client.post("/api/v1/orders/", {"market": "BTC-USD", "client_order_id": f"o-{next(counter)}", **order},
                           content_type="application/json", HTTP_AUTHORIZATION=headers[i % len(headers)],
                           SERVER_NAME="127.0.0.1")

    results = {(stack, name): [] for stack in stacks for name in ("balances", "orders")}
    with override_settings(ALLOWED_HOSTS=["testserver", "127.0.0.1"], SECURE_SSL_REDIRECT=False):
        for _ in range(args.rounds):
            for stack, middleware in stacks.items():
                with override_settings(MIDDLEWARE=middleware):
                    client = Client()
                    timed(client, 200, balances)  # warm-up
                    for name, call in (("balances", balances), ("orders", orders)):
                        results[(stack, name)].append(timed(client, args.requests, call))
    for (stack, name), rounds in results.items():
        medians = [statistics.median(r) for r in rounds]
        p99s = [percentile(r, 99) for r in rounds]
        report(f"{name}, {stack}", {
            "median per request (ms), per round": ", ".join(f"{m:.3f}" for m in medians),
            "p99 per request (ms), per round": ", ".join(f"{p:.3f}" for p in p99s),
        })


if __name__ == "__main__":
    main()
