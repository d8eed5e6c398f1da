"""The OpenAPI schema clients generate code from: valid, warning-free, with the error body documented."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_schema_generates_and_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_schema_documents_api_key_auth_errors_and_idempotency():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"]["in"] == "header"
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"code", "message", "field"}
    create = schema["paths"]["/api/v1/withdrawals/"]["post"]
    assert {"400", "401", "403", "409", "429"} <= set(create["responses"])
    assert create["responses"]["409"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
    header = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert (header["in"], header["required"]) == ("header", True)
    amount = schema["components"]["schemas"]["FundingCreateRequest"]["properties"]["amount"]
    assert (amount["type"], amount["format"]) == ("string", "decimal")
    assert "404" in schema["paths"]["/api/v1/withdrawals/{id}/"]["get"]["responses"]


def test_docs_page_is_served():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
