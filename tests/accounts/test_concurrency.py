"""Concurrent withdrawal requests of one account: the account row lock keeps keys and daily limits exact."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts import services
from accounts.errors import LimitExceeded
from accounts.models import IdempotencyRecord, Withdrawal
from tests.api import api_client_for
from tests.factories import allow_destination, assert_balance, fund
from tests.threads import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 6



def test_concurrent_replays_of_one_idempotency_key_create_one_withdrawal():
    alice = api_client_for()
    fund(alice.account, "BTC", "10")
    allow_destination(alice.account, "BTC", "bc1")

    def post(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"ApiKey {alice.secret}")
        response = client.post("/api/v1/withdrawals/", {"asset": "BTC", "amount": "1", "blockchain_address": "bc1"},
                               format="json", HTTP_IDEMPOTENCY_KEY="once")
        return response.status_code, response.json()["id"]

    results = run_in_threads(post, range(THREADS), threads=THREADS)

    assert {status for status, _ in results} == {201}
    assert len({withdrawal_id for _, withdrawal_id in results}) == 1
    assert Withdrawal.objects.count() == 1 and IdempotencyRecord.objects.count() == 1
    assert_balance(alice.account, "BTC", "10", held="1")


def test_concurrent_requests_cannot_together_exceed_the_daily_limit():
    alice = api_client_for()
    fund(alice.account, "BTC", "10")
    allow_destination(alice.account, "BTC", "bc1")
    services.asset_limit_set(account=alice.account, asset="BTC", daily_withdrawal_limit=Decimal("2"),
                             acting_user=None)

    def request(i):
        try:
            services.withdrawal_request(account=alice.account, asset="BTC", amount=Decimal("1"),
                                        idempotency_key=f"k{i}", acting_user=alice.user, blockchain_address="bc1")
            return "ok"
        except LimitExceeded:
            return "limit"

    results = run_in_threads(request, range(THREADS), threads=THREADS)

    assert sorted(results) == ["limit"] * (THREADS - 2) + ["ok", "ok"]
    assert_balance(alice.account, "BTC", "10", held="2")
