from datetime import timedelta

import pytest
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from accounts.models import ApiKey, Membership, Role, Scope
from accounts.permissions import client_account_of
from tests.api import api_client_for

pytestmark = pytest.mark.django_db


class WhoAmI(APIView):
    required_scopes = {"GET": Scope.READ, "POST": Scope.TRADE}

    def get(self, request):
        return Response({"account": client_account_of(request).pk})

    def post(self, request):
        return Response({"ok": True})


urlpatterns = [path("whoami", WhoAmI.as_view())]


@pytest.fixture(autouse=True)
def _urls(settings):
    settings.ROOT_URLCONF = __name__


def test_valid_key_authenticates_and_records_last_use():
    client = api_client_for()
    response = client.get("/whoami")
    assert response.status_code == 200
    assert response.json() == {"account": client.account.pk}
    client.api_key.refresh_from_db()
    assert client.api_key.last_used_at is not None


def test_wrong_secret_is_refused_with_a_code():
    client = api_client_for()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {client.api_key.prefix}.not-the-secret")
    response = client.get("/whoami")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


def test_secret_is_stored_hashed():
    client = api_client_for()
    secret = client._credentials["HTTP_AUTHORIZATION"].split(" ", 1)[1].split(".", 1)[1]
    assert secret not in ApiKey.objects.get(pk=client.api_key.pk).secret_hash


def test_revoked_key_is_refused():
    client = api_client_for()
    ApiKey.objects.filter(pk=client.api_key.pk).update(revoked_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/whoami")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


def test_ip_allow_list_is_enforced():
    client = api_client_for()
    ApiKey.objects.filter(pk=client.api_key.pk).update(allowed_ips=["10.1.2.3"])
    assert client.get("/whoami").json()["code"] == "invalid_api_key"
    ApiKey.objects.filter(pk=client.api_key.pk).update(allowed_ips=["127.0.0.1"])
    assert client.get("/whoami").status_code == 200


def test_scope_missing_from_key_is_refused():
    client = api_client_for(scopes=[Scope.READ])
    response = client.post("/whoami")
    assert response.status_code == 403
    assert response.json()["code"] == "scope_required"


def test_viewer_role_cannot_trade_even_with_a_trade_key():
    client = api_client_for(role=Role.TRADER)
    Membership.objects.filter(user=client.user).update(role=Role.VIEWER)
    assert client.post("/whoami").status_code == 403
    assert client.get("/whoami").status_code == 200


def test_anonymous_request_is_refused():
    response = APIClient().get("/whoami")
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"
