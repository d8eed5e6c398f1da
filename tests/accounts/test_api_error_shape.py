"""Every API answer to bad input is JSON in the error shape, including the ones DRF and Django make."""

import pytest
from rest_framework.test import APIClient

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



@pytest.mark.parametrize("content_type, body, status, code", [
    ("text/plain", "name=x", 415, "unsupported_media_type"),
    # JSON only: forms and multipart, well-formed or not, are not parsed at all.
    ("application/x-www-form-urlencoded", "name=x&scopes=read", 415, "unsupported_media_type"),
    ("multipart/form-data", "--no-boundary--", 415, "unsupported_media_type"),
    ("application/json", '{"name": ', 400, "parse_error"),
])
def test_a_body_the_api_cannot_parse_is_refused_in_the_error_shape_with_a_documented_status(
    content_type, body, status, code,
):
    client = api_client_for()
    response = client.generic("POST", "/api/v1/api-keys/", body, content_type=content_type)
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (status, code, None)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    documented = schema["paths"]["/api/v1/api-keys/"]["post"]["responses"][str(status)]
    assert documented["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"


def test_415_is_documented_only_where_there_is_a_request_body():
    paths = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    assert "415" in paths["/api/v1/withdrawals/"]["post"]["responses"]
    assert "415" not in paths["/api/v1/withdrawals/"]["get"]["responses"]
    assert "415" not in paths["/api/v1/api-keys/{id}/revoke/"]["post"]["responses"]
