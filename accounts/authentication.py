"""API-key authentication for client apps.

Clients send ``Authorization: ApiKey <prefix>.<secret>`` (or ``X-API-Key: <prefix>.<secret>``). The prefix
finds the key; the secret is compared with its stored SHA-256 in constant time. ``request.auth`` is the ApiKey.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.errors import Code
from accounts.models import ApiKey, ClientAccount, Membership
from accounts.services import api_key_matches
from audit.context import client_ip, credential_used
from ledger.models import LedgerAccount

LAST_USED_RESOLUTION = timedelta(seconds=60)


def _credential(request) -> str | None:
    header = get_authorization_header(request).decode("latin-1")
    if header[:7].lower() == "apikey ":
        return header[7:].strip()
    return request.META.get("HTTP_X_API_KEY") or None


def api_key_by_prefix(prefix: str) -> ApiKey | None:
    """The key with this prefix, read fresh on every request (revocation applies at once), together with what
    the request needs next: its user with the user's membership (scopes), and its account with the account's
    ledger account (order placement). A hand-written join: compiling the equivalent ``select_related`` query
    cost more CPU than all the rest of the authentication."""
    sql, slices, converters_per_column = _api_key_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    row = [value if value is None or not converters else _converted(value, converters)
           for value, converters in zip(row, converters_per_column)]
    key, user, membership, account, ledger_account = (
        model.from_db(connection.alias, names, row[start:end]) if row[start + pk_index] is not None else None
        for model, names, pk_index, start, end in slices
    )
    ApiKey._meta.get_field("user").set_cached_value(key, user)
    ApiKey._meta.get_field("account").set_cached_value(key, account)
    user._meta.get_field("membership").set_cached_value(user, membership)  # None: known to have none
    ClientAccount._meta.get_field("ledger_account").set_cached_value(account, ledger_account)
    if membership is not None:
        Membership._meta.get_field("user").set_cached_value(membership, user)
    if ledger_account is not None:
        LedgerAccount._meta.get_field("client").set_cached_value(ledger_account, account)
    return key


@cache
def _api_key_query() -> tuple[str, list[tuple[type, list[str], int, int, int]], list[list]]:
    """The SQL selecting every column of the key, user, membership, account and ledger account; per model its
    attribute names, where its primary key is among them (NULL: no such row) and its slice of the row; per
    column the ORM's converters of the value read."""
    tables = [
        (ApiKey, "k", "{table} k"),
        (get_user_model(), "u", "JOIN {table} u ON u.id = k.user_id"),
        (Membership, "m", "LEFT JOIN {table} m ON m.user_id = u.id"),
        (ClientAccount, "a", "JOIN {table} a ON a.id = k.account_id"),
        (LedgerAccount, "l", "LEFT JOIN {table} l ON l.client_id = a.id"),
    ]
    qn = connection.ops.quote_name
    columns, converters, sources, slices = [], [], [], []
    for model, alias, source in tables:
        fields = model._meta.concrete_fields
        slices.append((model, [f.attname for f in fields], fields.index(model._meta.pk), len(columns),
                       len(columns) + len(fields)))
        columns += [f"{alias}.{qn(f.column)}" for f in fields]
        # What the ORM applies to these columns on reading (e.g. JSONField decodes its text).
        converters += [
            [(convert, col) for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection)]
            for col in (f.get_col(alias) for f in fields)
        ]
        sources.append(source.format(table=qn(model._meta.db_table)))
    sql = f"SELECT {', '.join(columns)} FROM {' '.join(sources)} WHERE k.prefix = %s"
    return sql, slices, converters


def _converted(value, converters):
    for convert, col in converters:
        value = convert(value, col, connection)
    return value


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "ApiKey"

    def authenticate(self, request):
        credential = _credential(request)
        if credential is None:
            return None
        prefix, _, secret = credential.partition(".")
        key = api_key_by_prefix(prefix)
        if key is None or not secret or not api_key_matches(key, secret):
            raise exceptions.AuthenticationFailed("Invalid API key.", code=Code.INVALID_API_KEY)
        if not key.is_active:
            raise exceptions.AuthenticationFailed("This API key has been revoked.", code=Code.API_KEY_REVOKED)
        if not key.user.is_active:
            raise exceptions.AuthenticationFailed("The user of this API key is inactive.", code=Code.USER_INACTIVE)
        if key.allowed_ips and client_ip(request) not in key.allowed_ips:
            raise exceptions.AuthenticationFailed("Requests from this IP address are not allowed for this key.",
                                                  code=Code.IP_NOT_ALLOWED)
        self._touch(key)
        credential_used(user_id=key.user_id, label=f"{key.user.get_username()} (api-key {key.prefix})"[:100])
        return key.user, key

    def authenticate_header(self, request):
        return self.keyword

    @staticmethod
    def _touch(key: ApiKey) -> None:
        """Record use at most once a minute, so reads do not each cost a write."""
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
