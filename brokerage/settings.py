"""Settings read from the environment.

With nothing configured the project runs on an embedded default: a SQLite file and Celery tasks executed
eagerly in-process. ``DATABASE_URL`` switches to PostgreSQL (psycopg 3); ``CELERY_BROKER_URL`` or ``REDIS_URL``
switches Celery to a real broker and real workers.
"""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from core.env import env_bool, env_decimal, env_decimal_map, env_int, env_list, env_str
from core.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

# Off unless DEBUG=1 is set: a deployment that forgets it gets production settings (README "Security"). ./run sets
# it for a local run and says so.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "console.apps.ConsoleAdminConfig",  # django.contrib.admin with the operations console site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc files served from here (pinned), never from a CDN
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "core",
    "audit",
    "ledger",
    "accounts",
    "events",
    "trading",
    "compliance",
    "console.apps.ConsoleConfig",
    "channels",
    "streams",
]

MIDDLEWARE = [
    "core.middleware.RequestMiddleware",  # first: request id, metrics and the log line cover everything below
    "core.api.middleware.ApiErrorMiddleware",  # API paths answer JSON errors, whatever fails after it
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.security_middleware.SessionOtpMiddleware",  # request.user.is_verified(): signed in with a second factor
    "core.security_middleware.StaffSessionMiddleware",  # short idle and absolute lifetimes of staff sessions
    "audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.security_middleware.ContentSecurityPolicyMiddleware",  # django-csp's, the header built once
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

ROOT_URLCONF = "brokerage.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "brokerage.wsgi.application"

DATABASE_URL = env_str("DATABASE_URL", "")
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
    if DATABASE_URL
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if "postgresql" in DATABASES["default"]["ENGINE"]:
    # An unreachable server fails a request in seconds (503 service_unavailable), not a TCP timeout later.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 3)
    # The hot paths' statements (core.db.prepared_cursor: order placement, API-key authentication) are prepared
    # after this many runs on a connection; Django's other queries bind on the client and are never prepared.
    # 0 turns it off (behind a pooler in transaction mode, e.g. PgBouncer before 1.21).
    _prepare_threshold = env_int("DB_PREPARE_THRESHOLD", 5)
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = _prepare_threshold or None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var")))

# Demo data (console.demo_clients, `manage.py seed_demo`): only on explicit opt-in, and never with DEBUG off.
DEMO_DATA = env_bool("DEMO_DATA", False)

# --- Security (README "Security"): HTTPS, cookies, CSP, staff sign-in -------------------------------------
# Each one from the environment, on by default when DEBUG is off; `manage.py check --deploy` is clean with them.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes and scrapes inside the cluster speak plain HTTP to the pod (README "Operations").
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
# The header the TLS-terminating proxy sets, "X-Forwarded-Proto=https"; "" when nothing terminates TLS in front.
# The proxy must overwrite the header a client sends (deploy/nginx.conf does).
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER", "" if DEBUG else "X-Forwarded-Proto=https").strip()
if _proxy_ssl_header:
    _name, _, _value = _proxy_ssl_header.partition("=")
    if not _name.strip() or not _value.strip():
        raise RuntimeError(
            f"SECURE_PROXY_SSL_HEADER must look like 'X-Forwarded-Proto=https', got {_proxy_ssl_header!r}")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _name.strip().upper().replace("-", "_"), _value.strip())
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Sessions: 12 hours at most for anyone; staff sessions end after STAFF_SESSION_IDLE_SECONDS without a request and
# STAFF_SESSION_MAX_SECONDS after sign-in, whatever happens (core.security_middleware.StaffSessionMiddleware).
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
STAFF_SESSION_IDLE_SECONDS = env_int("STAFF_SESSION_IDLE_SECONDS", 30 * 60)
STAFF_SESSION_MAX_SECONDS = env_int("STAFF_SESSION_MAX_SECONDS", 10 * 3600)

# Staff sign-in: django-axes locks a username (from anywhere) and an address (whatever the username) after
# AXES_FAILURE_LIMIT failed sign-ins (a wrong password or a wrong authenticator code) until AXES_COOLOFF_MINUTES
# pass without one; a success resets the count. Addresses are the connection's (REMOTE_ADDR), never a header.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "audit.context.client_ip"
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_VERBOSE = False
# Staff who can move money or change risk sign in with a TOTP code as well (core.staff_auth names the permissions).
# A code is accepted once; repeated wrong codes slow a device down (django-otp) and count as failed sign-ins.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Brokerage back office")

# Content-Security-Policy on every page (the console, the API docs, the browsable API): scripts from this origin
# only, never inline or eval'd; images, fonts and requests to this origin only, so an injected style cannot send
# anything elsewhere either. Inline styles are allowed (the admin's attributes, the console pages' <style>).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Throttle counters must be shared by every web process: Redis when configured, else this process's memory.
CACHE_URL = env_str("CACHE_URL", "") or env_str("REDIS_URL", "")
CACHES = {
    # Django's Redis cache, with one redis-py client per pool instead of one per call (core/cache.py).
    "default": {"BACKEND": "core.cache.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- REST API -------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.ExpiringTokenAuthentication",
        "core.api.authentication.CsrfCodedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.ClientScopePermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.api_exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    # Every request counts against its credential, its client account and its IP address (README "Security").
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env_str("API_KEY_THROTTLE_RATE", "6000/min"),
        "account": env_str("API_ACCOUNT_THROTTLE_RATE", "12000/min"),
        "ip": env_str("API_IP_THROTTLE_RATE", "12000/min"),
        # Requests without a credential (public market data), per IP: 10/s on average, as Coinbase's public API.
        "public_ip": env_str("API_PUBLIC_IP_THROTTLE_RATE", "600/min"),
        # Failed authentications: past these, every attempt is a 429 until the window moves on.
        "auth_failure_ip": env_str("AUTH_FAILURE_IP_RATE", "30/min"),
        "auth_failure_key": env_str("AUTH_FAILURE_KEY_RATE", "10/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Brokerage back office API",
    "DESCRIPTION": "Client API of the digital-asset brokerage: accounts, funding, orders, market data.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's files on this origin (its pinned version), not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AccountStatusEnum": "accounts.models.AccountStatus",
        "FundingStatusEnum": "accounts.models.FundingStatus",
        "EventTypeEnum": "events.types.EVENT_TYPE_CHOICES",
        "TypeEnum": "trading.models.OrderType",  # (its name before events had a "type" too)
    },
}

# --- Celery ---------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or env_str("REDIS_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep a worker's database connection between tasks (brokerage/celery.py): Celery's fix-up would otherwise open a
# new one for every task. It still closes them every this many tasks; Django's CONN_MAX_AGE applies as in the web.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 10_000)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
# RabbitMQ (amqp://) or Redis (redis://), chosen by the URL. CELERY_QUEUE renames the default queue (tests use
# their own, so they never consume another run's messages on a shared broker).
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
# A publish to a broker that is down gives up in well under a second: wake-ups are hints (the database is the
# queue of record and the sweep finds what a lost wake-up missed), so a request never waits on the broker.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECTION_TIMEOUT", 2)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 2, "socket_connect_timeout": 2}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # workers log through LOGGING: JSON lines with the request id
# One beat may run at a time: others wait on a PostgreSQL advisory lock and take over when it is released
# (core.beat); two beats never both schedule. Start as many as availability needs.
CELERY_BEAT_SCHEDULER = "core.beat:LeaderScheduler"
SWEEP_INTERVAL_SECONDS = float(env_decimal("SWEEP_INTERVAL_SECONDS", Decimal(5)))
CANCEL_AFTER_SWEEP_SECONDS = float(env_decimal("CANCEL_AFTER_SWEEP_SECONDS", Decimal(1)))
CELERY_BEAT_SCHEDULE = {
    "sweep-markets": {"task": "trading.tasks.sweep_markets", "schedule": SWEEP_INTERVAL_SECONDS},
    # Dead-man switches (POST /orders/cancel-after/): lapsed ones cancel their account's orders within this.
    "cancel-after-sweep": {"task": "trading.tasks.cancel_after_sweep", "schedule": CANCEL_AFTER_SWEEP_SECONDS},
    "nightly-reconciliation": {
        "task": "ledger.tasks.reconciliation_run",
        "schedule": crontab(hour=0, minute=15),
    },
    "end-of-day-snapshots": {
        "task": "ledger.tasks.balance_snapshot_take",
        "schedule": crontab(hour=0, minute=5),
    },
}

# --- Operations: health, metrics, logs --------------------------------------------------------------------
# /readyz fails "matcher" when the sweep (which records the heartbeat) has not run for this long.
MATCHER_HEARTBEAT_MAX_AGE_SECONDS = env_int("MATCHER_HEARTBEAT_MAX_AGE_SECONDS", 30)
# With a token, /metrics needs "Authorization: Bearer <token>" (deploy/ scrapes with it).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# A Celery worker serves its own /metrics on this port when set (one pod per worker; see deploy/k8s).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)

# --- Business settings ----------------------------------------------------------------------------------
# Orders per matcher transaction under backlog (steady load makes small batches anyway). Larger batches amortise
# the fixed cost per batch: 10,000 orders in-process ran at 2,785 orders/s with 500, 3,051 with 1,000.
MATCHER_BATCH_SIZE = env_int("MATCHER_BATCH_SIZE", 1000)
# A market's batches start at most this often under steady load (trading.wakeups.batch_pace): one batch per order
# or two costs a task and a wake-up each. An order arriving after a quiet spell is matched at once. 0: no pacing.
MATCHER_BATCH_INTERVAL_MS = env_int("MATCHER_BATCH_INTERVAL_MS", 20)
WITHDRAWAL_FOUR_EYES_THRESHOLD_USD = env_decimal("WITHDRAWAL_FOUR_EYES_THRESHOLD_USD", Decimal("10000"))
# Four-eyes thresholds of other assets, in the asset's own units ("BTC=0.25,ETH=5"). There is no price feed
# the back office trusts for this, so an asset without a threshold always needs two approvers (fail safe).
WITHDRAWAL_FOUR_EYES_THRESHOLDS = {
    "USD": WITHDRAWAL_FOUR_EYES_THRESHOLD_USD,
    "USDP": WITHDRAWAL_FOUR_EYES_THRESHOLD_USD,
    **env_decimal_map("WITHDRAWAL_FOUR_EYES_THRESHOLDS"),
}
# The rolling window over which withdrawals to one destination (and of one account) add up for four-eyes.
WITHDRAWAL_FOUR_EYES_WINDOW = timedelta(hours=24)
# A destination newly added to an account's withdrawal address book can be used only after this cool-off.
WITHDRAWAL_DESTINATION_COOL_OFF = timedelta(seconds=env_int("WITHDRAWAL_DESTINATION_COOL_OFF_SECONDS", 24 * 3600))
# The largest deposit a client may notify us of, per asset in its own units (DEPOSIT_NOTICE_MAX_AMOUNTS="BTC=100"
# overrides or adds assets). A client cannot notify a deposit of an asset without a maximum (fail safe).
DEPOSIT_NOTICE_MAX_AMOUNTS = {
    "USD": Decimal("10000000"),
    "USDP": Decimal("10000000"),
    "PAXG": Decimal("5000"),
    "BTC": Decimal("500"),
    "ETH": Decimal("10000"),
    **env_decimal_map("DEPOSIT_NOTICE_MAX_AMOUNTS"),
}
# API keys: at most this many active keys per user; DRF tokens (staff) expire this long after they were created.
API_KEYS_MAX_ACTIVE_PER_USER = env_int("API_KEYS_MAX_ACTIVE_PER_USER", 10)
API_TOKEN_TTL = timedelta(seconds=env_int("API_TOKEN_TTL_SECONDS", 8 * 3600))
# Signed requests (keys created with signing required): how far the timestamp may be from the server's clock, and
# the key the per-key signing secrets are derived from (default: derived from SECRET_KEY).
API_SIGNATURE_WINDOW_SECONDS = env_int("API_SIGNATURE_WINDOW_SECONDS", 30)
API_KEY_SIGNING_MASTER_KEY = env_str("API_KEY_SIGNING_MASTER_KEY", "")

# Compliance "large transactions" report: money in or out of client funds at or above these amounts, in each
# asset's own units. LARGE_TRANSACTION_THRESHOLDS="BTC=0.5,ETH=10" overrides or adds assets.
LARGE_TRANSACTION_THRESHOLDS = {
    "USD": Decimal("10000"),
    "USDP": Decimal("10000"),
    "PAXG": Decimal("5"),
    "BTC": Decimal("0.25"),
    "ETH": Decimal("5"),
    **env_decimal_map("LARGE_TRANSACTION_THRESHOLDS"),
}

# Held-rate quotes (README "Quotes"): how long a quote's price is held, the spread of a tier without one set
# (basis points), how deep the book is walked, how old a fallback price may be (0: no limit), and how far a
# reference may move against the firm between quote and execution (a market's own tolerance overrides it).
QUOTE_TTL_SECONDS = env_decimal("QUOTE_TTL_SECONDS", Decimal("30"))
QUOTE_DEFAULT_SPREAD_BPS = env_decimal("QUOTE_DEFAULT_SPREAD_BPS", Decimal("25"))
QUOTE_BOOK_DEPTH = env_int("QUOTE_BOOK_DEPTH", 100)
QUOTE_FALLBACK_MAX_AGE_SECONDS = env_int("QUOTE_FALLBACK_MAX_AGE_SECONDS", 3600)
QUOTE_EXECUTION_TOLERANCE_BPS = env_decimal("QUOTE_EXECUTION_TOLERANCE_BPS", Decimal("100"))
# Stablecoin conversions at exactly 1:1, both ways; each client may convert this much per rolling 24 hours
# unless operations set its own limit (ConversionLimit).
CONVERSION_PAIRS = [("USD", "USDP")]
CONVERSION_DAILY_LIMIT = env_decimal("CONVERSION_DAILY_LIMIT", Decimal("1000000"))

# --- API request bodies, error responses and error reports (issue 19) ------------------------------------
# JSON is the only request body the API parses: forms and multipart are a 415, so the schema offers JSON only.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["core.api.parsers.JsonParser"]
# Largest request body, in bytes (Django's setting and default); an API body over it is a 413 request_too_large.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
CSRF_FAILURE_VIEW = "core.api.errors.csrf_failure"
# Error pages and error e-mails mask the password of every URL-shaped value (DATABASE_URL, REDIS_URL, ...).
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.debug.UrlMaskingExceptionReporterFilter"

# --- E-mail and client onboarding (issue 19) --------------------------------------------------------------
# New client users get a one-time link to set their password. Locally (DEBUG) the e-mail is printed to the
# console; with DEBUG off the default is SMTP (EMAIL_HOST ...). PUBLIC_BASE_URL is the origin the link points at
# (e.g. https://backoffice.example.com); without it the console uses the host of the request, the command needs it.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "back-office@localhost")
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "").rstrip("/")
# How long a set-password link stays valid, in seconds (Django's setting; default 3 days).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3 * 24 * 3600)
# Client users who set a password sign in to the browsable API at /api-auth/login/ and land on their account.
LOGIN_REDIRECT_URL = "/api/v1/account/"

# JSON lines with the request id, secrets redacted (core.logs); LOG_FORMAT=plain for a terminal.
LOGGING = logging_config(fmt=env_str("LOG_FORMAT", "json"), level=env_str("LOG_LEVEL", "INFO"))

# --- Events (README "Events") ---------------------------------------------------------------------------
# Redis for wake-ups (events written, events sequenced, long-polls): REDIS_URL, else a Redis Celery broker.
EVENTS_REDIS_URL = env_str("EVENTS_REDIS_URL", "") or env_str("REDIS_URL", "") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "unix://")) else ""
)
EVENTS_SEQUENCE_BATCH = env_int("EVENTS_SEQUENCE_BATCH", 5000)
# Under load the relay's sequencer and webhook dispatcher look again at most this often (events.relay): a pass per
# writer's commit or two costs a transaction each. After a quiet spell they look at once. 0: at every wake-up.
EVENTS_RELAY_INTERVAL_MS = env_int("EVENTS_RELAY_INTERVAL_MS", 50)
EVENTS_PAGE_MAX = 500
EVENTS_LONG_POLL_MAX_SECONDS = env_int("EVENTS_LONG_POLL_MAX_SECONDS", 30)  # caps ``wait`` (at most 30)
# Long-polls waiting at once per web process (each holds a request thread, never a database connection).
EVENTS_LONG_POLL_MAX_WAITERS = env_int("EVENTS_LONG_POLL_MAX_WAITERS", 2)
# POST /orders/ with await_fill_ms: requests waiting at once per web process (beyond: answered without waiting).
ORDERS_AWAIT_MAX_WAITERS = env_int("ORDERS_AWAIT_MAX_WAITERS", 2)
# RabbitMQ: when set, the relay publishes every event to a durable topic exchange (routing key <type>.<account>).
EVENTS_AMQP_URL = env_str("EVENTS_AMQP_URL", "")
EVENTS_AMQP_EXCHANGE = env_str("EVENTS_AMQP_EXCHANGE", "brokerage.events")
EVENTS_AMQP_BATCH = env_int("EVENTS_AMQP_BATCH", 500)
# Webhooks: retries with exponential backoff and jitter: attempt n waits base * 2**(n-1), at most max, then a
# random 50-100% of that; an endpoint still failing after WINDOW seconds is disabled and operations alerted.
WEBHOOK_RETRY_BASE_SECONDS = env_decimal("WEBHOOK_RETRY_BASE_SECONDS", Decimal("10"))
WEBHOOK_RETRY_MAX_SECONDS = env_decimal("WEBHOOK_RETRY_MAX_SECONDS", Decimal("3600"))
WEBHOOK_RETRY_WINDOW_SECONDS = env_decimal("WEBHOOK_RETRY_WINDOW_SECONDS", Decimal("86400"))
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env_decimal("WEBHOOK_CONNECT_TIMEOUT_SECONDS", Decimal("3"))
WEBHOOK_TIMEOUT_SECONDS = env_decimal("WEBHOOK_TIMEOUT_SECONDS", Decimal("10"))  # the whole attempt
WEBHOOK_CONCURRENCY = env_int("WEBHOOK_CONCURRENCY", 8)  # endpoints delivered to at once by one relay
# Endpoints on loopback, private, link-local or reserved addresses are refused unless this is on (tests, local runs).
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", DEBUG)

# --- Streams (README "Streams") ----------------------------------------------------------------------------
# The WebSocket face (/ws/v1/, brokerage.asgi). With REDIS_URL the channel layer is Redis and one streamer
# process (``manage.py streams_relay``, started by ./run) feeds every ASGI process; without it the layer is this
# process's memory and each ASGI process runs its own streamer.
ASGI_APPLICATION = "brokerage.asgi.application"
STREAMS_REDIS_URL = env_str("STREAMS_REDIS_URL", "") or env_str("REDIS_URL", "")
CHANNEL_LAYERS = {
    "default": {
        # Redis pub/sub: a message to a group is published once and each ASGI process, subscribed once per group,
        # hands it to its own connections (the list-based RedisChannelLayer pushed and popped one copy per
        # connection through Redis: about 1,300 messages/s in all, measured). At most once, which streams
        # accept: a client that misses a message sees the sequence gap and resyncs from REST.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        # redis-py 8 defaults a pool to 100 connections and sockets to a 5 s timeout; both bit the list-based
        # layer (a burst of subscriptions; every idle blocking pop). Set explicitly.
        "CONFIG": {"hosts": [{"address": STREAMS_REDIS_URL, "socket_timeout": 15,
                              "max_connections": env_int("STREAMS_REDIS_MAX_CONNECTIONS", 500)}],
                   "prefix": "streams"},
    }
    if STREAMS_REDIS_URL
    else {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
}
STREAMS_STREAMER_IN_PROCESS = env_bool("STREAMS_STREAMER_IN_PROCESS", not STREAMS_REDIS_URL)
# Messages queued for one connection before it is cut off as too slow (close code 4008).
STREAMS_BUFFER_MESSAGES = env_int("STREAMS_BUFFER_MESSAGES", 500)
# The kernel's send buffer per connection (bytes; 0: the system's default): bounds what a stalled client holds.
STREAMS_SEND_BUFFER_BYTES = env_int("STREAMS_SEND_BUFFER_BYTES", 0)
STREAMS_MAX_CONNECTIONS_PER_IP = env_int("STREAMS_MAX_CONNECTIONS_PER_IP", 20)
STREAMS_MAX_CONNECTIONS_PER_KEY = env_int("STREAMS_MAX_CONNECTIONS_PER_KEY", 5)
STREAMS_MAX_SUBSCRIPTIONS = env_int("STREAMS_MAX_SUBSCRIPTIONS", 50)  # (channel, market) pairs per connection
STREAMS_MAX_MESSAGE_BYTES = env_int("STREAMS_MAX_MESSAGE_BYTES", 4096)  # a client's message
STREAMS_LEVEL2_DEPTH = env_int("STREAMS_LEVEL2_DEPTH", 1000)  # price levels per side in a level2 snapshot
STREAMS_HEARTBEAT_SECONDS = 1.0
