"""Money in the API: decimal strings in, decimal strings out, checked against the asset's precision.

Every API that takes or shows an amount uses these fields (accounts funding, trading orders):

- ``DecimalStringField``: input must be a JSON *string* in plain notation (``"1.50"``); JSON numbers are
  refused with ``decimal_string_required`` because a float cannot say exactly what it means. Malformed text
  (``"1e3"``, ``" 1"``, ``"1\\n"``, ``"1,5"``) is ``malformed_decimal``; zero/negatives are ``not_positive`` (unless
  allowed); more places than ``max_decimal_places`` is ``too_precise``; more than 20 integer digits is
  ``too_large`` (the database holds 38 digits, 18 of them decimals).
- ``AssetField``: an asset code; anything else is ``unknown_asset``.
- ``AssetAmountValidationMixin``: a serializer's amount has at most its asset's ``precision`` places
  (``too_precise`` on the amount field).
- ``AssetAmountField``: output quantised to the row's asset precision (``"0.50000000"`` for BTC).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

from ledger.errors import Code
from ledger.models import Asset
from ledger.money import is_exact

PLAIN_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
MAX_INTEGER_DIGITS = 20
MAX_DECIMAL_PLACES = 18

DECIMAL_STRING_SCHEMA = {
    "type": "string",
    "format": "decimal",
    "pattern": r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$",
    "example": "1.50",
}


@extend_schema_field(DECIMAL_STRING_SCHEMA)
class DecimalStringField(serializers.Field):
    default_error_messages = {
        Code.DECIMAL_STRING_REQUIRED: 'Send decimals as JSON strings such as "1.50", not as JSON numbers.',
        Code.MALFORMED_DECIMAL: 'Not a plain decimal number such as "1.50".',
        Code.NOT_POSITIVE: "Must be greater than zero.",
        Code.NEGATIVE: "Must not be negative.",
        Code.TOO_PRECISE: "At most {places} decimal places are allowed.",
        Code.TOO_LARGE: "At most {digits} digits before the decimal point are allowed.",
    }

    def __init__(self, *, allow_zero: bool = False, allow_negative: bool = False,
                 max_decimal_places: int = MAX_DECIMAL_PLACES, **kwargs):
        self.allow_zero = allow_zero
        self.allow_negative = allow_negative
        self.max_decimal_places = max_decimal_places
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> Decimal:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            self.fail(Code.DECIMAL_STRING_REQUIRED)
        if not isinstance(data, str) or not PLAIN_DECIMAL.fullmatch(data):  # (match: "$" lets "1\n" through)
            self.fail(Code.MALFORMED_DECIMAL)
        value = Decimal(data)
        whole, _, fraction = data.lstrip("-").partition(".")
        if len(whole) > MAX_INTEGER_DIGITS:
            self.fail(Code.TOO_LARGE, digits=MAX_INTEGER_DIGITS)
        if len(fraction.rstrip("0")) > self.max_decimal_places:
            self.fail(Code.TOO_PRECISE, places=self.max_decimal_places)
        if value < 0 and not self.allow_negative:
            self.fail(Code.NOT_POSITIVE if not self.allow_zero else Code.NEGATIVE)
        if value == 0 and not self.allow_zero:
            self.fail(Code.NOT_POSITIVE)
        return value

    def to_representation(self, value) -> str:
        return format(value, "f")


@extend_schema_field(DECIMAL_STRING_SCHEMA)
class AssetAmountField(DecimalStringField):
    """An output amount shown at the precision of the asset the same row names (``asset_source``)."""

    def __init__(self, *, asset_source: str = "asset", **kwargs):
        self.asset_source = asset_source
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        asset = instance[self.asset_source] if isinstance(instance, Mapping) else getattr(instance, self.asset_source)
        return super().get_attribute(instance), asset

    def to_representation(self, value) -> str | None:
        amount, asset = value
        if amount is None:
            return None
        return format(amount.quantize(asset.quantum), "f")


@extend_schema_field({"type": "string", "example": "BTC", "description": "Asset code."})
class AssetField(serializers.RelatedField):
    default_error_messages = {Code.UNKNOWN_ASSET: "Unknown asset {value!r}."}

    def __init__(self, **kwargs):
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", Asset.objects.all())
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> Asset:
        asset = self.get_queryset().filter(code=data).first() if isinstance(data, str) else None
        if asset is None:
            self.fail(Code.UNKNOWN_ASSET, value=str(data)[:20])
        return asset

    def to_representation(self, value) -> str:
        return getattr(value, "code", None) or value.pk


class AssetAmountValidationMixin:
    """Checks each (amount field, asset field) pair of ``asset_amount_fields`` against the asset's precision."""

    asset_amount_fields: tuple[tuple[str, str], ...] = (("amount", "asset"),)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        for amount_name, asset_name in self.asset_amount_fields:
            amount, asset = attrs.get(amount_name), attrs.get(asset_name)
            if amount is not None and asset is not None and not is_exact(amount, asset.precision):
                message = f"{asset.code} amounts have at most {asset.precision} decimal places."
                raise ValidationError({amount_name: [ErrorDetail(message, code=Code.TOO_PRECISE)]})
        return attrs
