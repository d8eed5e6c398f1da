"""OpenAPI generation: every operation documents the shared error body for its possible 4xx answers."""

from __future__ import annotations

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import SAFE_METHODS

from core.api.serializers import ErrorSerializer

ALWAYS = {
    "401": "Not authenticated: missing, invalid or revoked credentials.",
    "403": "Authenticated but not allowed: missing scope, account state, or four-eyes rule.",
    "429": "Throttled: too many requests for this API key; see the Retry-After header.",
}
WITH_INPUT = {"400": "Invalid input: `field` names the offending field, `code` says what is wrong."}
WITH_OBJECT = {"404": "No such object in your account."}
WITH_BODY = {"415": "Unsupported media type: a request body that cannot be parsed as its Content-Type."}
WITH_WRITE = {"409": "Conflict with the current state, or an Idempotency-Key reused with a different body."}


class ApiAutoSchema(AutoSchema):
    def get_tags(self) -> list[str]:
        """Group operations by resource (``/api/v1/withdrawals/...`` -> ``withdrawals``), not by version."""
        tokens = self._tokenize_path()
        if len(tokens) > 1 and tokens[0] == "v1":
            return [tokens[1]]
        return super().get_tags()

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None or self.view.__module__.startswith("drf_spectacular"):
            return operation
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
        for status, description in self._error_statuses(has_body="requestBody" in operation,
                                                         has_query=has_query).items():
            operation["responses"].setdefault(
                status, {"description": description, "content": {"application/json": {"schema": error}}}
            )
        return operation

    def get_auth(self) -> list[dict]:
        """The view's credentials, and none at all (``{}``) for reads anyone may make (``allows_anonymous_reads``
        on a permission: drf-spectacular only knows DRF's own AllowAny and IsAuthenticatedOrReadOnly)."""
        auths = super().get_auth()
        public = any(getattr(p, "allows_anonymous_reads", False) for p in self.view.get_permissions())
        if public and self.method in SAFE_METHODS and {} not in auths:
            auths.append({})
        return auths

    def _error_statuses(self, *, has_body: bool, has_query: bool = False) -> dict[str, str]:
        statuses = dict(ALWAYS)
        if self.method != "GET" or has_query or self._get_filter_parameters() or self._get_pagination_parameters():
            statuses.update(WITH_INPUT)
        if "{" in self.path:
            statuses.update(WITH_OBJECT)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            statuses.update(WITH_WRITE)
        if has_body:
            statuses.update(WITH_BODY)
        return statuses


class CsrfCodedSessionScheme(SessionScheme):
    """The session scheme, for the session authentication whose CSRF refusal has its own code."""

    target_class = "core.api.authentication.CsrfCodedSessionAuthentication"
