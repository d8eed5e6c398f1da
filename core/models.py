"""Model building blocks shared by every app: exact amount columns and append-only records."""

from __future__ import annotations

from django.db import models

from core.exceptions import Code, DomainError

AMOUNT = {"max_digits": 38, "decimal_places": 18}


class AppendOnlyQuerySet(models.QuerySet):
    """Refuses bulk UPDATE and DELETE; PostgreSQL triggers refuse them for raw SQL too."""

    def update(self, **kwargs):
        raise ImmutableRecordError(f"{self.model.__name__} rows are append-only.")

    def delete(self):
        raise ImmutableRecordError(f"{self.model.__name__} rows are append-only.")


class ImmutableRecordError(DomainError):
    """A write to an append-only record: a 409, never a 500, if it ever reaches a view."""

    code = Code.IMMUTABLE_RECORD
    http_status = 409


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRecordError(f"{type(self).__name__} #{self.pk} is append-only and cannot change.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecordError(f"{type(self).__name__} #{self.pk} is append-only and cannot be deleted.")


class Heartbeat(models.Model):
    """The last time a background loop proved it runs (``core.heartbeats``): one row per loop, e.g. ``matcher``."""

    name = models.CharField(max_length=64, primary_key=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
