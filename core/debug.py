"""What Django's error reports (the DEBUG page, error e-mails) may show: no password inside a URL.

Django hides settings whose *name* looks secret (``SECRET_KEY``, ``DATABASES["PASSWORD"]``) but shows
``DATABASE_URL = "postgres://app:s3cret@db/prod"`` in full, and the same URLs again in ``request.META`` when the
server copies its environment into it (``runserver`` does), in the cache and broker settings and in traceback
variables. This filter masks the password of any URL-shaped string wherever the report shows one, whatever the
setting or variable is called. Set as ``DEFAULT_EXCEPTION_REPORTER_FILTER``.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter

# scheme://user:password@ (the user may be empty: redis://:password@host). The password runs to the last "@"
# before whitespace, so one with an unencoded "@" or "/" is masked whole (at worst a little more is masked).
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/?#@\s]*):(?P<password>\S*)@", re.I)


def mask_url_passwords(text: str, substitute: str) -> str:
    """``postgres://app:s3cret@db/x`` -> ``postgres://app:********@db/x``; text without credentials unchanged."""
    return URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{substitute}@", text)


class UrlMaskingExceptionReporterFilter(SafeExceptionReporterFilter):
    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):  # str() too: a lazy string (a lazy setting) passes isinstance but not re
            return mask_url_passwords(str(cleansed), self.cleansed_substitute)
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, mask_url_passwords(str(value), self.cleansed_substitute) if isinstance(value, str) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]
