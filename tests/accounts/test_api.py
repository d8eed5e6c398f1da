"""The client API of accounts: every endpoint for auth, cross-account isolation and bad input."""

from decimal import Decimal

import pytest
from django.http import HttpRequest
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiKey, Deposit, Role, Withdrawal
from audit.models import AuditLog
from tests.api import api_client_for
from tests.factories import StaffFactory, allow_destination, assert_balance, fund

pytestmark = pytest.mark.django_db
D = Decimal
V1 = "/api/v1"


@pytest.fixture
def alice():
    """An admin of a funded account, calling with an API key."""
    client = api_client_for(role=Role.ADMIN)
    fund(client.account, "BTC", "10")
    fund(client.account, "USD", "5000")
    return with_address_book(client)


@pytest.fixture
def mallory():
    """An admin of another account."""
    return with_address_book(api_client_for(role=Role.ADMIN))


def with_address_book(client):
    """The destinations these tests withdraw to, on the client's address book past their cool-off."""
    for asset, address in (("BTC", "bc1qdest"), ("BTC", "bc1"), ("BTC", "bc1q"), ("USD", "DE89")):
        allow_destination(client.account, asset, address)
    return client


def withdraw(client, key="w-1", **body):
    body = {"asset": "BTC", "amount": "1.5", "blockchain_address": "bc1qdest", **body}
    return client.post(f"{V1}/withdrawals/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def alice_objects(alice):
    deposit = services.deposit_request(account=alice.account, asset="USD", amount=D("1"), acting_user=alice.user,
                                       bank_reference="B-1")
    withdrawal = Withdrawal.objects.get(pk=withdraw(alice).json()["id"])
    return {"deposit": deposit.pk, "withdrawal": withdrawal.pk, "key": alice.api_key.pk}


ENDPOINTS = [
    ("get", "/account/"),
    ("get", "/balances/"),
    ("get", "/statement/"),
    ("get", "/deposits/"),
    ("post", "/deposits/"),
    ("get", "/deposits/{deposit}/"),
    ("get", "/withdrawals/"),
    ("post", "/withdrawals/"),
    ("get", "/withdrawals/{withdrawal}/"),
    ("post", "/withdrawals/{withdrawal}/cancel/"),
    ("get", "/api-keys/"),
    ("post", "/api-keys/"),
    ("get", "/api-keys/{key}/"),
    ("post", "/api-keys/{key}/revoke/"),
    ("get", "/audit-log/"),
]


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_every_endpoint_requires_authentication(alice, method, path):
    url = V1 + path.format(**alice_objects(alice))
    response = getattr(APIClient(), method)(url, {}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "ApiKey"


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_every_endpoint_refuses_a_revoked_key(alice, method, path):
    url = V1 + path.format(**alice_objects(alice))
    services.api_key_revoke(key=alice.api_key, acting_user=alice.user)
    response = getattr(alice, method)(url, {}, format="json")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_api_key")


@pytest.mark.parametrize("method, path", [e for e in ENDPOINTS if "{" in e[1]])
def test_another_accounts_objects_are_not_found(alice, mallory, method, path):
    url = V1 + path.format(**alice_objects(alice))
    before = (Withdrawal.objects.filter(status="cancelled").count(), ApiKey.objects.filter(revoked_at=None).count())
    response = getattr(mallory, method)(url, {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert (Withdrawal.objects.filter(status="cancelled").count(),
            ApiKey.objects.filter(revoked_at=None).count()) == before


@pytest.mark.parametrize("path", ["/deposits/", "/withdrawals/", "/api-keys/", "/audit-log/", "/statement/"])
def test_lists_show_only_my_account(alice, mallory, path):
    alice_objects(alice)
    fund(mallory.account, "ETH", "1")
    mine = mallory.get(V1 + path).json()["results"]
    theirs = alice.get(V1 + path).json()["results"]
    assert theirs, "alice has data on every list"
    assert not {r["id"] for r in mine} & {r["id"] for r in theirs}
    if path == "/api-keys/":
        assert [r["prefix"] for r in mine] == [mallory.api_key.prefix]
    if path == "/statement/":
        assert [r["asset"] for r in mine] == ["ETH"]


def test_a_key_acts_for_its_own_account_only(alice, mallory):
    assert withdraw(mallory, key="m-1", amount="0.1").json()["code"] == "insufficient_funds"
    assert_balance(alice.account, "BTC", "10", held="0")
    assert mallory.get(f"{V1}/account/").json()["id"] == mallory.account.pk


# --- account profile --------------------------------------------------------------------------------------


def test_account_profile_shows_status_limits_and_my_role(alice):
    services.asset_limit_set(account=alice.account, asset="BTC", daily_withdrawal_limit=D("2"), acting_user=None)
    body = alice.get(f"{V1}/account/").json()
    assert body["id"] == alice.account.pk
    assert (body["status"], body["kyc_status"], body["role"]) == ("active", "approved", "admin")
    assert body["scopes"] == ["manage_keys", "read", "trade", "transfer"]
    assert body["limits"] == [{"asset": "BTC", "max_order_size": None, "daily_withdrawal_limit": "2.00000000"}]


def test_staff_without_a_client_account_is_refused():
    client = APIClient()
    client.force_authenticate(StaffFactory())
    response = client.get(f"{V1}/account/")
    assert (response.status_code, response.json()["code"]) == (403, "no_client_account")


def test_session_and_token_logins_work_for_client_users(alice):
    token = Token.objects.create(user=alice.user)
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert by_token.get(f"{V1}/account/").json()["id"] == alice.account.pk
    by_session = APIClient()
    # (django-axes checks every password sign-in against its lockouts, so it needs the request.)
    assert by_session.login(request=HttpRequest(), username=alice.user.username,
                            password="correct horse battery staple")
    assert by_session.get(f"{V1}/balances/").status_code == 200


# --- deposits -------------------------------------------------------------------------------------------


def test_client_notifies_a_deposit_which_credits_nothing_yet(alice):
    response = alice.post(f"{V1}/deposits/", {"asset": "ETH", "amount": "1.25", "tx_hash": "0xabc"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["asset"], body["amount"], body["status"]) == ("ETH", "1.250000000000000000", "requested")
    assert_balance(alice.account, "ETH", "0")
    deposit = Deposit.objects.get(pk=body["id"])
    assert deposit.requested_by == alice.user
    entry = AuditLog.objects.get(action="deposit.request", object_id=str(deposit.pk))
    assert entry.actor_label == f"{alice.user.username} (api-key {alice.api_key.prefix})"
    assert entry.ip_address == "127.0.0.1"


def test_deposit_with_idempotency_key_replays(alice):
    body = {"asset": "USD", "amount": "100", "bank_reference": "WIRE-7"}
    first = alice.post(f"{V1}/deposits/", body, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
    again = alice.post(f"{V1}/deposits/", body, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert Deposit.objects.count() == 1
    conflict = alice.post(f"{V1}/deposits/", {**body, "amount": "101"}, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
    assert (conflict.status_code, conflict.json()["code"]) == (409, "idempotency_conflict")


def test_deposit_list_filters_by_status_and_asset(alice):
    services.deposit_request(account=alice.account, asset="USD", amount=D("1"), acting_user=None, bank_reference="B")
    services.deposit_request(account=alice.account, asset="BTC", amount=D("1"), acting_user=None, tx_hash="0x1")
    assert [d["asset"] for d in alice.get(f"{V1}/deposits/?asset=BTC").json()["results"]] == ["BTC"]
    assert alice.get(f"{V1}/deposits/?status=completed").json()["results"] == []
    response = alice.get(f"{V1}/deposits/?asset=DOGE")
    assert (response.status_code, response.json()["field"]) == (400, "asset")


def test_a_viewer_may_read_but_not_move_money():
    viewer = api_client_for(role=Role.VIEWER)
    assert viewer.get(f"{V1}/deposits/").status_code == 200
    for path in ("/deposits/", "/withdrawals/"):
        response = viewer.post(V1 + path, {"asset": "USD", "amount": "1"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
        assert (response.status_code, response.json()["code"]) == (403, "scope_required")


# --- withdrawals ----------------------------------------------------------------------------------------


def test_withdrawal_request_holds_the_amount(alice):
    response = withdraw(alice, amount="1.5")
    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == "1.50000000"
    assert_balance(alice.account, "BTC", "10", held="1.5")
    balances = {b["asset"]: b for b in alice.get(f"{V1}/balances/").json()}
    assert balances["BTC"] == {"asset": "BTC", "total": "10.00000000", "held": "1.50000000",
                               "available": "8.50000000"}


def test_withdrawal_replay_returns_the_same_response_and_writes_nothing(alice):
    first = withdraw(alice, key="same")
    counts = (Withdrawal.objects.count(), AuditLog.objects.count())
    again = withdraw(alice, key="same")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert (Withdrawal.objects.count(), AuditLog.objects.count()) == counts
    assert_balance(alice.account, "BTC", "10", held="1.5")


def test_withdrawal_replay_after_the_state_moved_on_still_returns_the_first_response(alice):
    first = withdraw(alice, key="same")
    alice.post(f"{V1}/withdrawals/{first.json()['id']}/cancel/", {}, format="json")
    again = withdraw(alice, key="same")
    assert again.json() == first.json()
    assert again.json()["status"] == "requested"


def test_withdrawal_key_with_another_body_is_a_conflict(alice):
    withdraw(alice, key="same")
    response = withdraw(alice, key="same", amount="2")
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["field"]) == ("idempotency_conflict", "Idempotency-Key")
    assert_balance(alice.account, "BTC", "10", held="1.5")


def test_the_same_key_in_two_accounts_is_two_requests(alice, mallory):
    fund(mallory.account, "BTC", "3")
    assert withdraw(alice, key="k").status_code == 201
    assert withdraw(mallory, key="k").status_code == 201
    assert_balance(mallory.account, "BTC", "3", held="1.5")


def test_a_failed_request_stores_nothing_so_the_key_can_be_retried(alice):
    assert withdraw(alice, key="k", amount="11").json()["code"] == "insufficient_funds"
    assert withdraw(alice, key="k", amount="1").status_code == 201


@pytest.mark.parametrize("headers, code", [({}, "idempotency_key_required"),
                                           ({"HTTP_IDEMPOTENCY_KEY": "x" * 201}, "invalid_idempotency_key")])
def test_withdrawal_needs_a_valid_idempotency_key(alice, headers, code):
    response = alice.post(f"{V1}/withdrawals/", {"asset": "BTC", "amount": "1", "blockchain_address": "bc1"},
                          format="json", **headers)
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, "Idempotency-Key")
    assert not Withdrawal.objects.exists()


BAD_FUNDING_INPUT = [
    ({"amount": 1.5}, "amount", "decimal_string_required"),
    ({"amount": 2}, "amount", "decimal_string_required"),
    ({"amount": "1,5"}, "amount", "malformed_decimal"),
    ({"amount": "1e2"}, "amount", "malformed_decimal"),
    ({"amount": " 1"}, "amount", "malformed_decimal"),
    ({"amount": "NaN"}, "amount", "malformed_decimal"),
    ({"amount": None}, "amount", "null"),
    ({"amount": ["1"]}, "amount", "malformed_decimal"),
    ({"amount": "-1"}, "amount", "not_positive"),
    ({"amount": "0"}, "amount", "not_positive"),
    ({"amount": "0.000000001"}, "amount", "too_precise"),
    ({"amount": "1" * 21}, "amount", "too_large"),
    ({"asset": "DOGE"}, "asset", "unknown_asset"),
    ({"asset": "btc"}, "asset", "unknown_asset"),
    ({"asset": 7}, "asset", "unknown_asset"),
    ({"ammount": "1"}, "ammount", "unknown_field"),
    ({"status": "completed"}, "status", "unknown_field"),
    ({"blockchain_address": "x" * 129}, "blockchain_address", "max_length"),
]


@pytest.mark.parametrize("change, field, code", BAD_FUNDING_INPUT)
@pytest.mark.parametrize("path", ["/deposits/", "/withdrawals/"])
def test_bad_funding_input_is_a_400_naming_the_field(alice, path, change, field, code):
    body = {"asset": "BTC", "amount": "1", "blockchain_address": "bc1q", **change}
    response = alice.post(V1 + path, body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 400, response.json()
    assert (response.json()["code"], response.json()["field"]) == (code, field)
    assert not Withdrawal.objects.exists() and not Deposit.objects.exists()


def test_usd_amounts_have_two_places(alice):
    response = alice.post(f"{V1}/withdrawals/", {"asset": "USD", "amount": "1.001", "bank_reference": "DE89"},
                          format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert (response.json()["code"], response.json()["field"]) == ("too_precise", "amount")
    trailing_zeros = alice.post(f"{V1}/withdrawals/", {"asset": "USD", "amount": "1.0000", "bank_reference": "DE89"},
                                format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert trailing_zeros.status_code == 201
    assert trailing_zeros.json()["amount"] == "1.00"


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"a string"', "{"])
def test_malformed_bodies_are_400s(alice, body):
    response = alice.post(f"{V1}/withdrawals/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 400
    assert response.json()["code"] in ("parse_error", "invalid")


def test_a_frozen_account_cannot_withdraw_but_can_read(alice):
    services.account_freeze(account=alice.account, acting_user=None)
    response = withdraw(alice)
    assert (response.status_code, response.json()["code"]) == (403, "account_frozen")
    assert alice.get(f"{V1}/balances/").status_code == 200
    assert_balance(alice.account, "BTC", "10", held="0")


def test_withdrawal_needs_a_destination(alice):
    response = withdraw(alice, blockchain_address="")
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "destination_required", "blockchain_address")


def test_cancel_releases_the_hold_and_replays(alice):
    withdrawal_id = withdraw(alice).json()["id"]
    url = f"{V1}/withdrawals/{withdrawal_id}/cancel/"
    response = alice.post(url, {"reason": "wrong address"}, format="json")
    assert (response.status_code, response.json()["status"], response.json()["reason"]) == (
        200, "cancelled", "wrong address")
    assert_balance(alice.account, "BTC", "10", held="0")
    assert alice.post(url, {}, format="json").json()["status"] == "cancelled"
    assert AuditLog.objects.filter(action="withdrawal.cancel").count() == 1


def test_cancel_after_approval_is_a_conflict(alice):
    withdrawal = Withdrawal.objects.get(pk=withdraw(alice).json()["id"])
    services.withdrawal_approve(withdrawal=withdrawal, acting_user=StaffFactory())
    response = alice.post(f"{V1}/withdrawals/{withdrawal.pk}/cancel/", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")


def test_cancel_refuses_unknown_fields(alice):
    withdrawal_id = withdraw(alice).json()["id"]
    response = alice.post(f"{V1}/withdrawals/{withdrawal_id}/cancel/", {"force": True}, format="json")
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (400, "unknown_field",
                                                                                         "force")


# --- API keys -------------------------------------------------------------------------------------------


def test_api_key_secret_is_shown_once_and_works(alice):
    response = alice.post(f"{V1}/api-keys/", {"name": "bot", "scopes": ["read"]}, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["secret"].startswith(created["prefix"] + ".")
    assert "secret" not in alice.get(f"{V1}/api-keys/{created['id']}/").json()
    assert all("secret" not in k for k in alice.get(f"{V1}/api-keys/").json()["results"])
    bot = APIClient()
    bot.credentials(HTTP_AUTHORIZATION=f"ApiKey {created['secret']}")
    assert bot.get(f"{V1}/account/").json()["scopes"] == ["read"]
    assert withdraw(bot).json()["code"] == "scope_required"


def test_a_key_cannot_create_a_wider_key(alice):
    narrow = api_client_for(account=alice.account, role=Role.ADMIN, scopes=["manage_keys", "read"])
    response = narrow.post(f"{V1}/api-keys/", {"scopes": ["read", "transfer"]}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "scope_not_allowed")


@pytest.mark.parametrize("body, field, code", [
    ({"scopes": []}, "scopes", "empty"),
    ({"scopes": ["admin"]}, "scopes.0", "invalid_choice"),
    ({}, "scopes", "required"),
    ({"scopes": ["read"], "allowed_ips": ["999.1.1.1"]}, "allowed_ips.0", "invalid"),
    ({"scopes": ["read"], "secret": "mine"}, "secret", "unknown_field"),
    ({"scopes": ["read"], "name": "n" * 101}, "name", "max_length"),
])
def test_bad_api_key_input(alice, body, field, code):
    response = alice.post(f"{V1}/api-keys/", body, format="json")
    assert response.status_code == 400, response.json()
    assert (response.json()["field"], response.json()["code"]) == (field, code)


def test_revoke_via_api_is_immediate(alice):
    other = api_client_for(account=alice.account, role=Role.TRADER)
    response = alice.post(f"{V1}/api-keys/{other.api_key.pk}/revoke/", {}, format="json")
    assert (response.status_code, response.json()["is_active"]) == (200, False)
    assert other.get(f"{V1}/account/").json()["code"] == "invalid_api_key"


def test_a_non_admin_sees_and_revokes_only_own_keys(alice):
    trader = api_client_for(account=alice.account, role=Role.TRADER)
    assert [k["id"] for k in trader.get(f"{V1}/api-keys/").json()["results"]] == [trader.api_key.pk]
    assert trader.post(f"{V1}/api-keys/{alice.api_key.pk}/revoke/", {}, format="json").status_code == 404
    assert {k["id"] for k in alice.get(f"{V1}/api-keys/").json()["results"]} == {alice.api_key.pk, trader.api_key.pk}


# --- audit log ------------------------------------------------------------------------------------------


def test_audit_log_shows_my_changes_and_hides_staff_names(alice):
    withdrawal = Withdrawal.objects.get(pk=withdraw(alice).json()["id"])
    services.withdrawal_reject(withdrawal=withdrawal, acting_user=StaffFactory(username="ops-carol"))
    entries = alice.get(f"{V1}/audit-log/?object_type=accounts.withdrawal").json()["results"]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("withdrawal.reject", "operations"),
        ("withdrawal.request", f"{alice.user.username} (api-key {alice.api_key.prefix})"),
    ]
    assert (entries[0]["before"]["status"], entries[0]["after"]["status"]) == ("requested", "rejected")


def test_audit_log_is_cursor_paginated(alice):
    for n in range(3):
        services.api_key_create(user=alice.user, name=f"k{n}", scopes=["read"])
    page = alice.get(f"{V1}/audit-log/?page_size=2").json()
    assert len(page["results"]) == 2 and page["next"]
    rest = alice.get(page["next"]).json()
    assert not {e["id"] for e in page["results"]} & {e["id"] for e in rest["results"]}


# --- throttling -----------------------------------------------------------------------------------------


@pytest.fixture
def low_rate(settings):
    rest = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/min"}}
    with override_settings(REST_FRAMEWORK=rest,
                           CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                               "LOCATION": "throttle-test"}}):
        from django.core.cache import cache

        cache.clear()
        yield


def test_throttling_is_per_api_key(alice, low_rate):
    statuses = [alice.get(f"{V1}/balances/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = alice.get(f"{V1}/account/")
    assert throttled.json()["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
    second_key = api_client_for(account=alice.account)
    assert second_key.get(f"{V1}/balances/").status_code == 200
