"""Rate limiting of the client API: one budget per API key (per user for session/token logins, per IP for
anonymous requests). The rate is ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_key"]`` (env
``API_KEY_THROTTLE_RATE``), read at request time; counters live in the default cache (Redis when
configured, so every web process shares them)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self):
        # DRF binds THROTTLE_RATES when the class is defined; reading it here honours settings changes.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if isinstance(getattr(request, "auth", None), ApiKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
