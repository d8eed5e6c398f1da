"""The schema says exactly what the server accepts: JSON request bodies only, and no operation the server does
not really offer."""

import pytest
from rest_framework.test import APIClient

from tests.api import api_client_for

pytestmark = pytest.mark.django_db


def _schema():
    return APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def test_every_request_body_in_the_schema_is_json_only():
    bodies = {
        (path, method): set(operation["requestBody"]["content"])
        for path, operations in _schema()["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    assert len(bodies) >= 7
    assert {key: types for key, types in bodies.items() if types != {"application/json"}} == {}


def test_revoking_a_key_is_post_only_in_the_schema_and_on_the_server():
    assert set(_schema()["paths"]["/api/v1/api-keys/{id}/revoke/"]) == {"post"}
    client = api_client_for()
    response = client.get(f"/api/v1/api-keys/{client.api_key.pk}/revoke/")
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
    assert response["Allow"] == "POST, OPTIONS"
    client.api_key.refresh_from_db()
    assert client.api_key.revoked_at is None


def test_every_get_operation_is_a_read():
    """A GET in the schema must not change anything: no operation id of a GET names an action."""
    for path, operations in _schema()["paths"].items():
        if "get" in operations:
            assert not any(word in path for word in ("/revoke/", "/cancel/", "/cancel-all/", "/approve/")), path
