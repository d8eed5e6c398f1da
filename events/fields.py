"""A JSON column kept as the exact text that was written.

The event log is written on the matcher's hot path: PostgreSQL's ``jsonb`` input (parsing each payload into its
binary form) cost three times the rest of an event row's insert, and nothing queries inside a payload. The text
is what every channel sends, key order included."""

from __future__ import annotations

import orjson
from django.db import models


class JSONTextField(models.TextField):
    description = "JSON, stored as text"

    def from_db_value(self, value, expression, connection):
        return None if value is None else orjson.loads(value)

    def to_python(self, value):
        return orjson.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        if value is None or isinstance(value, str):
            return value
        return orjson.dumps(value).decode()

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))
