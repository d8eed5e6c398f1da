"""Serializer building blocks every API app shares: strict input and the documented error body."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError


class RejectUnknownFieldsMixin:
    """A field the serializer does not accept (unknown or read-only) is a 400 ``unknown_field``, not ignored:
    a typo such as ``ammount`` must not silently fall back to a default."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = [name for name in data if name not in writable]
            if unknown:
                raise ValidationError(
                    {name: [ErrorDetail("This field is not accepted here.", code="unknown_field")] for name in unknown}
                )
        return super().to_internal_value(data)


class StrictSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    pass


class ErrorSerializer(serializers.Serializer):
    """The body of every 4xx response."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `insufficient_funds`.")
    message = serializers.CharField(help_text="Human-readable explanation; may change.")
    field = serializers.CharField(
        allow_null=True, help_text="The request field (or header) at fault, dotted for nested fields; null if none."
    )
    errors = serializers.JSONField(
        required=False, help_text="Validation errors only: every error per field, as DRF reports them."
    )
