"""What the API's bounded JSON parser and its error middleware cost per request, against DRF's own parser and
no middleware. No database: it times the parsing of an order body (and a 1 MB body) and a request through
``ApiErrorMiddleware`` around a view that does nothing. Prints the median of 5 runs and the spread.

    .venv/bin/python bench/request_parsing.py
"""

from __future__ import annotations

import io
import json
import os
import statistics
import timeit

from common import django_setup

RUNS = 5


def per_call_us(stmt, number: int) -> tuple[float, float, float]:
    times = [timeit.timeit(stmt, number=number) / number * 1e6 for _ in range(RUNS)]
    return statistics.median(times), min(times), max(times)


def main() -> None:
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")  # RequestFactory's host
    django_setup()
    from django.http import HttpResponse
    from django.test import RequestFactory
    from rest_framework.parsers import JSONParser

    from core.api.middleware import ApiErrorMiddleware
    from core.api.parsers import JsonParser

    order = json.dumps({"market": "BTC-USD", "side": "buy", "type": "limit", "size": "0.01000", "price": "30000.00",
                        "time_in_force": "gtc", "client_order_id": "bench-000001"}).encode()
    big = json.dumps({"rows": [{"id": n, "note": "x" * 80} for n in range(10_000)]}).encode()
    cases = [("order body", order, 20_000), ("1 MB body", big, 20)]
    for label, body, number in cases:
        for name, parser in (("DRF JSONParser", JSONParser()), ("core JsonParser", JsonParser())):
            med, low, high = per_call_us(lambda: parser.parse(io.BytesIO(body), "application/json", {}), number)
            print(f"{label:11} {name:16} {med:9.1f} us per parse (min {low:.1f}, max {high:.1f})")

    factory = RequestFactory()
    request = factory.post("/api/v1/orders/", order, content_type="application/json")
    view = lambda r: HttpResponse(status=201)  # noqa: E731
    wrapped = ApiErrorMiddleware(view)
    for name, call in (("no middleware", lambda: view(request)), ("ApiErrorMiddleware", lambda: wrapped(request))):
        med, low, high = per_call_us(call, 50_000)
        print(f"request     {name:18} {med:7.2f} us per request (min {low:.2f}, max {high:.2f})")


if __name__ == "__main__":
    main()
