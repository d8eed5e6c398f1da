"""Issue 18, keys and throttling: each attack of the review reproduced through the API, and refused.

#5 a read-only key created keys and revoked the account's trading keys; keys it created survived its revocation;
no cap on keys; keys and staff tokens never expired. Signed requests for keys that ask for them.
#6 self-service keys multiplied the rate limit; failed authentication was never throttled.
#14c an IP-refused key was told its secret was right (every failed credential now gets the same 401).
"""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ApiKey, Role
from tests.api import api_client_for
from tests.factories import allow_destination, fund

pytestmark = pytest.mark.django_db
V1 = "/api/v1"


def key_client(secret: str, **extra) -> APIClient:
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {secret}")
    return client


def create_key(client, **body):
    return client.post(f"{V1}/api-keys/", {"name": "k", "scopes": ["read"], **body}, format="json")


# --- #5 manage_keys, cascade, cap, expiry -------------------------------------------------------------------------


def test_a_read_only_key_can_neither_create_keys_nor_revoke_the_trading_keys():
    admin = api_client_for(role=Role.ADMIN)
    trading = api_client_for(account=admin.account, role=Role.TRADER)
    reader = api_client_for(account=admin.account, role=Role.ADMIN, scopes=["read"])

    created = create_key(reader)
    assert (created.status_code, created.json()["code"]) == (403, "scope_required")
    revoked = reader.post(f"{V1}/api-keys/{trading.api_key.pk}/revoke/", {}, format="json")
    assert (revoked.status_code, revoked.json()["code"]) == (403, "scope_required")
    assert trading.get(f"{V1}/account/").status_code == 200
    assert reader.get(f"{V1}/api-keys/").status_code == 200  # reading the list is still a read

    manager = api_client_for(account=admin.account, role=Role.ADMIN, scopes=["manage_keys", "read"])
    assert manager.post(f"{V1}/api-keys/{trading.api_key.pk}/revoke/", {}, format="json").status_code == 200
    assert trading.get(f"{V1}/account/").status_code == 401


def test_keys_created_by_a_key_die_with_it():
    root = api_client_for(role=Role.ADMIN, scopes=["manage_keys", "read", "trade"])
    child = create_key(root, scopes=["manage_keys", "read"])
    assert child.status_code == 201
    grandchild = create_key(key_client(child.json()["secret"]), scopes=["read"])
    assert grandchild.status_code == 201
    clients = [key_client(body["secret"]) for body in (child.json(), grandchild.json())]
    assert [c.get(f"{V1}/account/").status_code for c in clients] == [200, 200]

    other = api_client_for(account=root.account, role=Role.ADMIN)  # the account admin revokes the leaked root key
    assert other.post(f"{V1}/api-keys/{root.api_key.pk}/revoke/", {}, format="json").status_code == 200

    assert [c.get(f"{V1}/account/").status_code for c in (root, *clients)] == [401, 401, 401]
    assert ApiKey.objects.filter(revoked_at__isnull=True, account=root.account).count() == 1  # ``other``
    reasons = [k.revoked_at is not None for k in ApiKey.objects.filter(created_by_key__isnull=False)]
    assert reasons == [True, True]


def test_a_user_holds_a_capped_number_of_active_keys(settings):
    settings.API_KEYS_MAX_ACTIVE_PER_USER = 3
    me = api_client_for(role=Role.TRADER)  # one key already
    assert [create_key(me).status_code for _ in range(2)] == [201, 201]
    refused = create_key(me)
    assert (refused.status_code, refused.json()["code"]) == (409, "api_key_limit_reached")
    one = ApiKey.objects.filter(user=me.user).exclude(pk=me.api_key.pk).first()
    me.post(f"{V1}/api-keys/{one.pk}/revoke/", {}, format="json")
    assert create_key(me).status_code == 201


def test_an_expired_key_is_refused_and_a_child_cannot_outlive_its_parent():
    me = api_client_for(role=Role.TRADER)
    past = create_key(me, expires_at=(timezone.now() - timedelta(minutes=1)).isoformat())
    assert (past.status_code, past.json()["code"], past.json()["field"]) == (400, "invalid_expiry", "expires_at")

    soon = timezone.now() + timedelta(hours=1)
    short = create_key(me, scopes=["manage_keys", "read"], expires_at=soon.isoformat())
    assert short.status_code == 201 and short.json()["expires_at"] is not None
    short_client = key_client(short.json()["secret"])
    longer = create_key(short_client, expires_at=(soon + timedelta(days=1)).isoformat())
    assert (longer.status_code, longer.json()["code"]) == (400, "invalid_expiry")
    inherited = create_key(short_client)
    assert inherited.status_code == 201
    assert ApiKey.objects.get(pk=inherited.json()["id"]).expires_at == ApiKey.objects.get(
        pk=short.json()["id"]).expires_at

    ApiKey.objects.filter(pk=short.json()["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = short_client.get(f"{V1}/account/")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_api_key")


def test_tokens_expire(settings):
    settings.API_TOKEN_TTL = timedelta(hours=8)
    alice = api_client_for(role=Role.ADMIN)
    token = Token.objects.create(user=alice.user)
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert by_token.get(f"{V1}/account/").status_code == 200
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - timedelta(hours=8, seconds=1))
    expired = by_token.get(f"{V1}/account/")
    assert (expired.status_code, expired.json()["code"]) == (401, "invalid_token")
    by_token.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert by_token.get(f"{V1}/account/").json() == expired.json()


# --- #6 / #14c one 401 for every failed credential ----------------------------------------------------------------


def test_every_failed_credential_gets_the_same_answer():
    """Unknown key, wrong secret, revoked, expired, inactive user, refused IP: the same status, body and header.
    In particular an IP-refused key with the right secret learns nothing about the secret (14c)."""
    answers = {}

    def answer(name, client):
        response = client.get(f"{V1}/account/")
        answers[name] = (response.status_code, response.json(), response.get("WWW-Authenticate"))

    answer("unknown key", key_client("0123456789ab.whatever"))
    answer("garbage", key_client("!!!"))
    victim = api_client_for()
    answer("wrong secret", key_client(f"{victim.api_key.prefix}.wrong"))
    for name, change in [("revoked", {"revoked_at": timezone.now()}),
                         ("expired", {"expires_at": timezone.now() - timedelta(seconds=1)}),
                         ("ip refused", {"allowed_ips": ["10.9.8.7"]})]:
        client = api_client_for()
        ApiKey.objects.filter(pk=client.api_key.pk).update(**change)
        answer(name, client)
    inactive = api_client_for()
    get_user_model().objects.filter(pk=inactive.user.pk).update(is_active=False)
    answer("inactive user", inactive)

    distinct = {(status, json.dumps(body, sort_keys=True), header) for status, body, header in answers.values()}
    assert len(distinct) == 1, answers
    status, body, header = answers["ip refused"]
    assert (status, body, header) == (401, {"code": "invalid_api_key", "message": "Invalid API key.",
                                            "field": None}, "ApiKey")


# --- #6 throttling per account and per IP, on Redis --------------------------------------------------------------


def test_self_service_keys_do_not_multiply_the_limit(redis_rates):
    """The review: five keys at 5/min each got 25 requests accepted in a minute. The account's budget holds."""
    redis_rates(api_key="5/min", account="5/min")
    first = api_client_for(role=Role.ADMIN)
    keys = [first] + [key_client(create_key(first, scopes=["read"]).json()["secret"]) for _ in range(4)]
    statuses = [client.get(f"{V1}/balances/").status_code for client in keys for _ in range(5)]
    # Creating the four keys used four requests of the account's five.
    assert statuses.count(200) == 1 and statuses.count(429) == 24
    throttled = keys[-1].get(f"{V1}/balances/")
    assert throttled.json()["code"] == "throttled" and int(throttled["Retry-After"]) > 0

    elsewhere = api_client_for(role=Role.ADMIN)  # another account is not affected
    assert elsewhere.get(f"{V1}/balances/").status_code == 200


def test_one_ip_has_one_budget_whatever_it_claims_to_forward(redis_rates):
    redis_rates(ip="6/min")
    clients = [api_client_for(), api_client_for()]
    statuses = [client.get(f"{V1}/account/", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
                for n in range(4) for client in clients]
    assert statuses == [200] * 6 + [429] * 2
    other_ip = key_client(clients[0].secret, REMOTE_ADDR="192.0.2.10")
    assert other_ip.get(f"{V1}/account/").status_code == 200


def test_failed_authentication_is_throttled_per_ip(redis_rates):
    redis_rates(auth_failure_ip="5/min", auth_failure_key="100/min")
    victim = api_client_for()
    guesses = [key_client(f"{n:012x}.guess").get(f"{V1}/account/") for n in range(7)]
    assert [r.status_code for r in guesses] == [401] * 5 + [429] * 2
    assert guesses[-1].json()["code"] == "authentication_throttled" and int(guesses[-1]["Retry-After"]) > 0
    # From that address even a right key waits; from another address it works.
    assert victim.get(f"{V1}/account/").status_code == 429
    assert key_client(victim.secret, REMOTE_ADDR="192.0.2.77").get(f"{V1}/account/").status_code == 200


def test_failed_authentication_is_throttled_per_key_prefix(redis_rates):
    redis_rates(auth_failure_ip="100/min", auth_failure_key="3/min")
    victim = api_client_for()
    prefix = victim.api_key.prefix
    statuses = [key_client(f"{prefix}.guess-{n}", REMOTE_ADDR=f"198.51.100.{n}").get(f"{V1}/account/").status_code
                for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    bystander = api_client_for()
    assert bystander.get(f"{V1}/account/").status_code == 200


def test_failed_token_authentication_is_throttled_per_ip(redis_rates):
    redis_rates(auth_failure_ip="2/min")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token guess")
    assert [client.get(f"{V1}/account/").status_code for _ in range(3)] == [401, 401, 429]


# --- request signing -----------------------------------------------------------------------------------------


def signed_headers(key: str, method: str, path: str, body: bytes = b"", timestamp: float | None = None) -> dict:
    """The README's client snippet: HMAC-SHA256 of timestamp + method + path + body under the secret."""
    prefix, _, secret = key.partition(".")
    stamp = str(int(time.time() if timestamp is None else timestamp))
    message = stamp.encode() + method.upper().encode() + path.encode() + body
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {"HTTP_AUTHORIZATION": f"ApiKey {prefix}", "HTTP_X_API_TIMESTAMP": stamp,
            "HTTP_X_API_SIGNATURE": signature}


@pytest.fixture
def signer(redis_rates):
    """A signing key of an account admin (funded, one destination listed), and its full credential."""
    admin = api_client_for(role=Role.ADMIN)
    fund(admin.account, "BTC", "3")
    allow_destination(admin.account, "BTC", "bc1qsigned")
    created = create_key(admin, scopes=["read", "transfer"], signing_required=True)
    assert created.status_code == 201 and created.json()["signing_required"] is True
    return created.json()["secret"]


def test_a_signing_key_needs_a_fresh_valid_signature_on_every_request(signer):
    client = APIClient()
    path = f"{V1}/balances/?asset=BTC"
    assert client.get(path, **signed_headers(signer, "GET", path)).status_code == 200

    refusals = {
        "unsigned, full secret": key_client(signer).get(path),
        "stale": client.get(path, **signed_headers(signer, "GET", path, timestamp=time.time() - 31)),
        "future": client.get(path, **signed_headers(signer, "GET", path, timestamp=time.time() + 31)),
        "other path": client.get(f"{V1}/balances/", **signed_headers(signer, "GET", path)),
        "wrong secret": client.get(path, **signed_headers(signer.split(".")[0] + ".x", "GET", path)),
    }
    replayed_headers = signed_headers(signer, "GET", f"{V1}/account/")
    assert client.get(f"{V1}/account/", **replayed_headers).status_code == 200
    refusals["replayed"] = client.get(f"{V1}/account/", **replayed_headers)
    assert {name: (r.status_code, r.json()["code"]) for name, r in refusals.items()} == {
        name: (401, "invalid_api_key") for name in refusals}


def test_a_signed_body_cannot_be_altered(signer):
    client = APIClient()
    path = f"{V1}/withdrawals/"
    body = json.dumps({"asset": "BTC", "amount": "0.5", "blockchain_address": "bc1qsigned"}).encode()
    headers = signed_headers(signer, "POST", path, body)
    tampered = body.replace(b"0.5", b"2.5")
    refused = client.generic("POST", path, tampered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="s-1",
                             **headers)
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_api_key")
    accepted = client.generic("POST", path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="s-1",
                              **signed_headers(signer, "POST", path, body))
    assert accepted.status_code == 201 and accepted.json()["amount"] == "0.50000000"
