"""Client accounts, funding requests and API keys as the client API shows them, as plain dicts: the API's
serializers render through these functions and the event log stores their output (README "Events")."""

from __future__ import annotations

from core.representation import fixed, iso
from ledger.representations import asset_places

FUNDING_FIELDS = ["id", "asset", "amount", "status", "blockchain_address", "tx_hash", "bank_reference", "reason",
                  "created_at", "updated_at"]


def funding_data(request) -> dict:
    """A deposit or a withdrawal (``GET /deposits/<id>/``, ``GET /withdrawals/<id>/``)."""
    return {
        "id": request.pk,
        "asset": request.asset_id,
        "amount": fixed(request.amount, asset_places(request.asset_id)),
        "status": str(request.status),
        "blockchain_address": request.blockchain_address,
        "tx_hash": request.tx_hash,
        "bank_reference": request.bank_reference,
        "reason": request.reason,
        "created_at": iso(request.created_at),
        "updated_at": iso(request.updated_at),
    }


def api_key_data(key) -> dict:
    """An API key without its secret (``GET /api-keys/<id>/``)."""
    return {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "username": key.user.username,
        "scopes": list(key.scopes),
        "allowed_ips": list(key.allowed_ips),
        "is_active": key.is_active,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "revoked_at": iso(key.revoked_at),
        "expires_at": iso(key.expires_at),
        "signing_required": key.signing_required,
    }


def account_data(account) -> dict:
    """A client account as ``GET /account/`` shows it, less what depends on the caller (username, role,
    scopes)."""
    return {
        "id": account.pk,
        "legal_name": account.legal_name,
        "kind": str(account.kind),
        "status": str(account.status),
        "kyc_status": str(account.kyc_status),
        "tier": str(account.tier),
        "can_trade": account.can_trade,
        "can_withdraw": account.can_withdraw,
        "created_at": iso(account.created_at),
        "limits": [
            {
                "asset": limit.asset_id,
                "max_order_size": fixed(limit.max_order_size, asset_places(limit.asset_id)),
                "daily_withdrawal_limit": fixed(limit.daily_withdrawal_limit, asset_places(limit.asset_id)),
            }
            for limit in account.asset_limits.all()
        ],
    }
