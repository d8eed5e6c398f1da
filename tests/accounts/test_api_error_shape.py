"""Every API answer to bad input is JSON in the error shape, including the ones DRF and Django make."""

import pytest

from tests.api import api_client_for

pytestmark = pytest.mark.django_db


def test_malformed_cursor_is_a_400_naming_the_cursor():
    client = api_client_for()
    response = client.get("/api/v1/audit-log/", {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"
    assert response.json()["field"] == "cursor"


def test_unroutable_api_path_is_a_json_404():
    client = api_client_for()
    response = client.get("/api/v1/orders/not-a-number/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": "No such resource.", "field": None}


def test_non_api_paths_keep_django_404_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
