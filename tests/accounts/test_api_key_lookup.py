"""api_key_by_prefix: the key and what requests need next, read in one query on every request."""

import pytest
from django.utils import timezone

from accounts.authentication import api_key_by_prefix
from accounts.models import ApiKey, Membership
from ledger.models import LedgerAccount
from tests.api import api_client_for

pytestmark = pytest.mark.django_db


def test_one_query_loads_the_key_user_membership_account_and_ledger_account(django_assert_num_queries):
    client = api_client_for(scopes=["read"])
    reference = ApiKey.objects.select_related("user__membership", "account__ledger_account").get(
        pk=client.api_key.pk)
    with django_assert_num_queries(1):
        key = api_key_by_prefix(client.api_key.prefix)
        loaded = [key, key.user, key.user.membership, key.account, key.account.ledger_account,
                  key.user.membership.user, key.account.ledger_account.client]
    expected = [reference, reference.user, reference.user.membership, reference.account,
                reference.account.ledger_account, reference.user, reference.account]
    for obj, ref in zip(loaded, expected):
        assert type(obj) is type(ref) and not obj._state.adding and obj._state.db == "default"
        assert {k: v for k, v in vars(obj).items() if k != "_state"} == {
            k: v for k, v in vars(ref).items() if k != "_state"}
    assert key.scopes == ["read"] and key.allowed_ips == []  # JSON decoded as the ORM does


def test_missing_membership_and_ledger_account_are_known_absent(django_assert_num_queries):
    client = api_client_for()
    Membership.objects.filter(user=client.user).delete()
    LedgerAccount.objects.filter(client=client.account).delete()
    with django_assert_num_queries(1):
        key = api_key_by_prefix(client.api_key.prefix)
        assert getattr(key.user, "membership", None) is None
        assert getattr(key.account, "ledger_account", None) is None


def test_unknown_prefix_and_revocation_are_read_fresh():
    client = api_client_for()
    assert api_key_by_prefix("no-such-prefix") is None
    assert api_key_by_prefix(client.api_key.prefix).revoked_at is None
    ApiKey.objects.filter(pk=client.api_key.pk).update(revoked_at=timezone.now())
    assert api_key_by_prefix(client.api_key.prefix).revoked_at is not None
    assert client.get("/api/v1/balances/").json()["code"] == "invalid_api_key"
