"""Serializer building blocks every API app shares: strict input, validating a request body, and the documented
error body."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.utils.serializer_helpers import BindingDict

from core.exceptions import Code


class RejectUnknownFieldsMixin:
    """A field the serializer does not accept (unknown or read-only) is a 400 ``unknown_field``, not ignored:
    a typo such as ``ammount`` must not silently fall back to a default."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = [name for name in data if name not in writable]
            if unknown:
                raise ValidationError(
                    {name: [ErrorDetail("This field is not accepted here.", code=Code.UNKNOWN_FIELD)] for name in unknown}
                )
        return super().to_internal_value(data)


class StrictSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    pass


class SharedFieldsMixin:
    # (No docstring: drf-spectacular would show it as the description of every serializer using the mixin.)
    #
    # Builds a serializer class's fields once and shares them between its instances. DRF deep-copies every
    # declared field for each instance (and a ModelSerializer derives its fields from the model again), which
    # costs more than validating or rendering a small object. The fields are bound to a prototype instance
    # without data, instance or context, so use it only where no field reads the serializer's context, root or
    # instance (SerializerMethodField, HiddenField, CurrentUserDefault, unique validators, partial updates) and
    # nothing changes ``self.fields`` per instance. Fields keep no per-request state, so threads may share them.

    @property
    def fields(self) -> BindingDict:
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            prototype = cls()
            shared = BindingDict(prototype)
            for name, field in prototype.get_fields().items():
                shared[name] = field
            cls._shared_fields = shared
        return shared


def validated(serializer_class, request) -> dict:
    """The request's body validated by ``serializer_class``; invalid, a ValidationError (the API's 400)."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


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
