"""Stablecoin conversions: USD to USDP and back at exactly 1:1, no fee (README "Stablecoin conversions").

A conversion is a trade with the firm's inventory at a fixed price of 1, so it goes through the chart of
accounts the way a quote does, in one balanced entry ``conversion:<id>``: the client's ``from`` asset goes to
``firm:inventory`` and the client's ``to`` asset comes from it. Per asset the entry sums to zero; across the two
assets the client's value is unchanged (the same amount leaves in one and arrives in the other) and the
firm's inventory swaps one for the other. The inventory of the ``to`` asset must cover it: the exposure limits
apply as to quotes. Idempotent per (account, idempotency key); limited per client per rolling 24 hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from accounts.errors import LimitExceeded
from accounts.models import ClientAccount
from accounts.services import account_require_can_trade
from audit.services import audit_record, audit_values, user_or_none
from ledger import services as ledger
from ledger.errors import Code as LedgerCode
from ledger.errors import IdempotencyConflict, InsufficientFunds, InvalidAmount
from ledger.models import Asset
from ledger.money import is_exact
from ledger.selectors import balance_get
from trading import clock
from trading.errors import Code, ConversionUnsupported, QuoteCode, TradingError
from trading.inventory import exposure_guarded, exposure_require, inventory_account
from trading.models import Conversion, ConversionLimit
from trading.services.controls import kill_switch_require_off

DAILY_WINDOW = timedelta(hours=24)
CONVERSION_AUDIT_FIELDS = ["from_asset", "to_asset", "amount", "entry"]


def conversion_pairs() -> set[tuple[str, str]]:
    """Every (from, to) allowed: each configured pair, both ways."""
    return {pair for a, b in settings.CONVERSION_PAIRS for pair in ((a, b), (b, a))}


def daily_limit_of(account: ClientAccount) -> Decimal:
    own = ConversionLimit.objects.filter(account=account).values_list("daily_limit", flat=True).first()
    return settings.CONVERSION_DAILY_LIMIT if own is None else own


def converted_since(*, account: ClientAccount, since: datetime) -> Decimal:
    """What counts against the daily limit: every conversion of the account since ``since``, either way (the
    pairs are 1:1, so amounts add up in one unit)."""
    total = Conversion.objects.filter(account=account, created_at__gte=since).aggregate(total=Sum("amount"))["total"]
    return total or Decimal(0)


def _asset(code: str | Asset, *, field: str) -> Asset:
    if isinstance(code, Asset):
        return code
    found = Asset.objects.filter(code=code).first() if isinstance(code, str) else None
    if found is None:
        raise TradingError(f"Unknown asset {code!r}.", code=LedgerCode.UNKNOWN_ASSET, field=field)
    return found


@transaction.atomic
def conversion_create(*, account: ClientAccount, from_asset: str | Asset, to_asset: str | Asset, amount: Decimal,
                      idempotency_key: str, acting_user, at: datetime | None = None) -> Conversion:
    """Convert ``amount`` of ``from_asset`` into the same amount of ``to_asset``. The same key with the same
    content returns the first conversion; with other content it is ``idempotency_conflict``. Refused:
    ``conversion_unsupported``, ``insufficient_funds``, ``daily_limit_exceeded``, ``exposure_limit_exceeded``
    (the firm's inventory cannot deliver it), and the account's own state."""
    at = at or clock.now()
    account = ClientAccount.objects.select_for_update(no_key=True).get(pk=account.pk)  # serialises the limit check
    source, target = _asset(from_asset, field="from_asset"), _asset(to_asset, field="to_asset")
    if (source.code, target.code) not in conversion_pairs():
        raise ConversionUnsupported(f"{source.code} cannot be converted to {target.code}; pairs: "
                                    f"{', '.join(sorted(f'{a}-{b}' for a, b in settings.CONVERSION_PAIRS))}.",
                                    field="to_asset")
    amount = _amount(amount, source, target)
    if not idempotency_key or len(idempotency_key) > 200:
        raise TradingError("A conversion needs an idempotency key of 1 to 200 characters.",
                           code=QuoteCode.IDEMPOTENCY_KEY_REQUIRED, field="idempotency_key")
    existing = Conversion.objects.filter(account=account, idempotency_key=idempotency_key).first()
    if existing is not None:
        if (existing.from_asset_id, existing.to_asset_id, existing.amount) != (source.code, target.code, amount):
            raise IdempotencyConflict(f"Idempotency key {idempotency_key!r} was already used for another "
                                      f"conversion.", field="idempotency_key")
        return existing
    account_require_can_trade(account=account)
    kill_switch_require_off(account=account)
    _within_daily_limit(account, amount, at)
    client = ledger.client_ledger_account_create(client=account)
    available = balance_get(account=client, asset=source.code).available
    if available < amount:
        raise InsufficientFunds(f"Insufficient {source.code}: {amount.normalize():f} needed, "
                                f"{available.normalize():f} available.", field="amount")
    exposure_require({source.code: amount, target.code: -amount})
    conversion = Conversion.objects.create(account=account, from_asset=source, to_asset=target, amount=amount,
                                           idempotency_key=idempotency_key, created_at=at,
                                           created_by=user_or_none(acting_user))
    conversion.entry_id = f"conversion:{conversion.pk}"  # the entry comes last: it locks the inventory rows
    conversion.save(update_fields=["entry"])
    audit_record(acting_user=acting_user, action="conversion.create", obj=conversion, account=account,
                 after=audit_values(conversion, CONVERSION_AUDIT_FIELDS))
    # Event log (when it lands): "conversion.created" here, in this transaction.
    inventory = inventory_account()
    with exposure_guarded():
        ledger.entry_post(
            key=conversion.entry_id, kind="conversion",
            legs=[ledger.debit(client, source.code, amount), ledger.credit(inventory, source.code, amount),
                  ledger.debit(inventory, target.code, amount), ledger.credit(client, target.code, amount)],
            memo=f"Conversion #{conversion.pk}: {amount.normalize():f} {source.code} -> {target.code}",
            acting_user=user_or_none(acting_user),
        )
    return conversion


def _amount(amount, source: Asset, target: Asset) -> Decimal:
    """Positive, and exact in both assets: 1:1 must hold to the last unit of each."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InvalidAmount("The amount must be a positive decimal.", code=Code.NOT_POSITIVE, field="amount")
    places = min(source.precision, target.precision)
    if not is_exact(amount, places):
        raise InvalidAmount(f"A {source.code}-{target.code} conversion has at most {places} decimal places.",
                            code=Code.TOO_PRECISE, field="amount")
    return amount


def _within_daily_limit(account: ClientAccount, amount: Decimal, at: datetime) -> None:
    """Under the account's row lock: conversions of the last 24 hours plus this one stay within the limit."""
    limit = daily_limit_of(account)
    used = converted_since(account=account, since=at - DAILY_WINDOW)
    if used + amount > limit:
        raise LimitExceeded(f"This conversion would exceed the daily conversion limit of {limit.normalize():f}: "
                            f"{used.normalize():f} already converted in the last 24 hours.", field="amount")
