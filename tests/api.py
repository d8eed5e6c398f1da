"""An authenticated API client for tests: a client account's user calling with a real API key."""

from __future__ import annotations

from rest_framework.test import APIClient

from accounts.models import Role, Scope
from accounts.services import api_key_create
from tests.factories import MembershipFactory


def api_client_for(*, account=None, role: str = Role.ADMIN, scopes=tuple(Scope.values)) -> APIClient:
    """An APIClient authenticated by a fresh API key of a new user in ``account`` (a new account if None)."""
    membership = MembershipFactory(role=role, **({"account": account} if account is not None else {}))
    key, secret = api_key_create(user=membership.user, name="test", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {secret}")
    client.account = membership.account
    client.user = membership.user
    client.api_key = key
    return client
