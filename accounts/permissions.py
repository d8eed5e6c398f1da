"""Who may do what through the client API: a scope per kind of request, granted by role and API key."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.errors import Code
from accounts.models import ROLE_SCOPES, ApiKey, ClientAccount, Scope
from core.exceptions import Forbidden


def client_account_of(request) -> ClientAccount:
    """The client account a request acts for: the API key's account, else the user's membership."""
    if isinstance(request.auth, ApiKey):
        return request.auth.account
    membership = getattr(request.user, "membership", None)
    if membership is None:
        raise Forbidden("This user does not belong to a client account.", code=Code.NO_CLIENT_ACCOUNT)
    return membership.account


def granted_scopes(request) -> set[str]:
    membership = getattr(request.user, "membership", None)
    role_scopes = ROLE_SCOPES.get(membership.role, set()) if membership else set()
    if isinstance(request.auth, ApiKey):
        return role_scopes & set(request.auth.scopes)
    return role_scopes


class AccountScopedMixin:
    """Lists and lookups see only the request's client account."""

    # (drf-spectacular shows this docstring for views that have none of their own: keep it as it is.)
    # A view names its ``model`` and returns the account's rows from ``account_queryset(account)``.
    model: type

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.account_queryset(client_account_of(self.request))

    def account_queryset(self, account):
        raise NotImplementedError


class ClientScopePermission(BasePermission):
    """Requires the scope a view names for the request's method in ``required_scopes``.

    ``required_scopes = {"GET": "read", "POST": "trade"}``; methods not listed need ``read``.
    """

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        client_account_of(request)
        needed = getattr(view, "required_scopes", {}).get(request.method, Scope.READ)
        if needed not in granted_scopes(request):
            raise Forbidden(f"This request needs the {str(needed)!r} scope.", code=Code.SCOPE_REQUIRED)
        return True


class PublicReadPermission(ClientScopePermission):
    """Anyone may read (GET, HEAD, OPTIONS) without a credential, as with market data; a request that comes with
    a credential is checked as on every other endpoint (a wrong one is still a 401, a key without ``read`` a 403)."""

    allows_anonymous_reads = True  # the OpenAPI schema says so (core.api.schema)

    def has_permission(self, request, view) -> bool:
        if request.user and request.user.is_authenticated:
            return super().has_permission(request, view)
        return request.method in SAFE_METHODS
