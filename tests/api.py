"""An authenticated API client for tests: a client account's user calling with a real API key."""

from __future__ import annotations

from rest_framework.test import APIClient

from accounts.models import ROLE_SCOPES, Role
from accounts.services import api_key_create
from tests.factories import MembershipFactory


def api_client_for(*, account=None, role: str = Role.ADMIN, scopes=None) -> APIClient:
    """An APIClient authenticated by a fresh API key of a new user in ``account`` (a new account if None).
    The key has ``scopes``, by default every scope the role allows."""
    membership = MembershipFactory(role=role, **({"account": account} if account is not None else {}))
    scopes = sorted(ROLE_SCOPES[role]) if scopes is None else list(scopes)
    key, secret = api_key_create(user=membership.user, name="test", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {secret}")
    client.account = membership.account
    client.user = membership.user
    client.api_key = key
    client.secret = secret
    return client
