"""Client balances and ledger statement over the API."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from ledger.models import Posting
from tests.api import api_client_for
from tests.factories import StaffFactory, allow_destination, deposit_reference, fund

pytestmark = pytest.mark.django_db
D = Decimal
ETH_ZERO = "0." + "0" * 18


@pytest.fixture
def alice():
    return api_client_for()


def completed_deposit(account, asset, amount):
    ops = StaffFactory()
    deposit = services.deposit_request(account=account, asset=asset, amount=D(amount), acting_user=None,
                                       **deposit_reference(asset))
    services.deposit_approve(deposit=deposit, acting_user=ops)
    return services.deposit_complete(deposit=deposit, acting_user=StaffFactory())


def test_balances_list_every_asset_at_its_precision(alice):
    completed_deposit(alice.account, "BTC", "2")
    allow_destination(alice.account, "BTC", "bc1q")
    services.withdrawal_request(account=alice.account, asset="BTC", amount=D("0.5"), idempotency_key="k",
                                acting_user=alice.user, blockchain_address="bc1q")
    response = alice.get("/api/v1/balances/")
    assert response.status_code == 200
    assert response.json() == [
        {"asset": "BTC", "total": "2.00000000", "held": "0.50000000", "available": "1.50000000"},
        {"asset": "ETH", "total": ETH_ZERO, "held": ETH_ZERO, "available": ETH_ZERO},
        {"asset": "PAXG", "total": "0.00000000", "held": "0.00000000", "available": "0.00000000"},
        {"asset": "USD", "total": "0.00", "held": "0.00", "available": "0.00"},
        {"asset": "USDP", "total": "0.000000", "held": "0.000000", "available": "0.000000"},
    ]


def test_balances_are_my_own(alice):
    other = api_client_for()
    fund(other.account, "USD", "99")
    mine = {b["asset"]: b["total"] for b in alice.get("/api/v1/balances/").json()}
    assert mine["USD"] == "0.00"


def test_balances_with_an_api_key_reuse_the_ledger_account_it_loaded(alice, django_assert_num_queries):
    fund(alice.account, "USD", "12.5")
    alice.get("/api/v1/balances/")  # records the key's use
    with django_assert_num_queries(3):  # the key with account and ledger account; balances; assets
        response = alice.get("/api/v1/balances/")
    assert {b["asset"]: b["total"] for b in response.json()}["USD"] == "12.50"


def test_balances_and_statement_with_a_session_login(alice):
    fund(alice.account, "USD", "7")
    web = APIClient()
    web.force_login(alice.user)
    assert {b["asset"]: b["total"] for b in web.get("/api/v1/balances/").json()}["USD"] == "7.00"
    assert [line["amount"] for line in web.get("/api/v1/statement/").json()["results"]] == ["7.00"]


@pytest.mark.parametrize("path", ["/api/v1/balances/", "/api/v1/statement/"])
def test_authentication_is_required(path):
    response = APIClient().get(path)
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


def test_statement_lines_are_signed_from_my_point_of_view(alice):
    deposit = completed_deposit(alice.account, "USD", "1000")
    allow_destination(alice.account, "USD", "DE89")
    withdrawal = services.withdrawal_request(account=alice.account, asset="USD", amount=D("250.5"),
                                             idempotency_key="k", acting_user=alice.user, bank_reference="DE89")
    ops = StaffFactory()
    services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops)
    services.withdrawal_complete(withdrawal=withdrawal, acting_user=ops)

    lines = alice.get("/api/v1/statement/").json()["results"]

    assert [(line["kind"], line["reference"], line["asset"], line["amount"]) for line in lines] == [
        ("withdrawal", f"withdrawal:{withdrawal.pk}", "USD", "-250.50"),
        ("deposit", f"deposit:{deposit.pk}", "USD", "1000.00"),
    ]


def test_statement_filters_by_asset_and_time(alice):
    fund(alice.account, "BTC", "1")
    fund(alice.account, "USD", "5")
    assert [line["asset"] for line in alice.get("/api/v1/statement/?asset=BTC").json()["results"]] == ["BTC"]

    first = Posting.objects.filter(account__client=alice.account, asset_id="BTC").get()
    after = (first.created_at + timedelta(microseconds=1)).isoformat()
    assert [line["asset"] for line in
            alice.get("/api/v1/statement/", {"created_after": after}).json()["results"]] == ["USD"]
    assert [line["asset"] for line in
            alice.get("/api/v1/statement/", {"created_before": after}).json()["results"]] == ["BTC"]
    today = timezone.now().date().isoformat()
    assert len(alice.get("/api/v1/statement/", {"created_after": today}).json()["results"]) == 2


@pytest.mark.parametrize("query, field", [({"asset": "DOGE"}, "asset"), ({"created_after": "yesterday"},
                                                                        "created_after"),
                                          ({"created_before": "2024-13-01"}, "created_before")])
def test_bad_statement_filters_are_400s(alice, query, field):
    response = alice.get("/api/v1/statement/", query)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_statement_is_cursor_paginated(alice):
    for _ in range(5):
        fund(alice.account, "ETH", "1")
    page = alice.get("/api/v1/statement/?page_size=2").json()
    seen = [line["id"] for line in page["results"]]
    while page["next"]:
        page = alice.get(page["next"]).json()
        seen += [line["id"] for line in page["results"]]
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
