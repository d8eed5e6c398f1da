from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Rate limit per API key (or per user for staff sessions)."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        key = getattr(request, "auth", None)
        ident = f"key:{key.pk}" if hasattr(key, "prefix") else f"user:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
