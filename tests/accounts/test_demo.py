import pytest
from django.http import HttpRequest
from rest_framework.test import APIClient

from accounts.models import ApiKey, ClientAccount, Deposit
from console.demo_clients import DEMO_CLIENTS, demo_clients_create
from ledger.models import JournalEntry
from tests.factories import assert_balance

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def demo_opt_in(settings):
    settings.DEMO_DATA = True


def test_demo_clients_are_onboarded_funded_and_usable_over_the_api(ops):
    clients = demo_clients_create(acting_user=ops)

    assert [c.legal_name for c in clients] == [spec.legal_name for spec in DEMO_CLIENTS]
    for client, spec in zip(clients, DEMO_CLIENTS):
        account = ClientAccount.objects.get(pk=client.account_id)
        assert (account.status, account.kyc_status) == ("active", "approved")
        for asset, amount in spec.funding.items():
            assert_balance(account, asset, amount, held="0")
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"ApiKey {client.api_key}")
        balances = {b["asset"]: b["available"] for b in api.get("/api/v1/balances/").json()}
        assert balances["BTC"] == f"{spec.funding['BTC']}.00000000"
        assert APIClient().login(request=HttpRequest(), username=client.username, password=client.password)


def test_running_the_demo_twice_changes_no_money_and_rotates_the_key(ops):
    first = demo_clients_create(acting_user=ops)
    entries, deposits = JournalEntry.objects.count(), Deposit.objects.count()

    second = demo_clients_create(acting_user=ops)

    assert (JournalEntry.objects.count(), Deposit.objects.count()) == (entries, deposits)
    assert ClientAccount.objects.count() == len(DEMO_CLIENTS)
    assert [c.account_id for c in second] == [c.account_id for c in first]
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == len(DEMO_CLIENTS)
    old = APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"ApiKey {first[0].api_key}")
    assert old.get("/api/v1/account/").json()["code"] == "invalid_api_key"
