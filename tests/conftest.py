import os
import uuid

import pytest

from accounts.throttling import AuthFailureGuard
from ledger.services import reference_data_ensure
from trading.books import books_clear


@pytest.fixture(autouse=True)
def reference_data(request):
    """Assets and firm accounts: seeded by migration, but flushed away by transactional tests, so ensured here."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not {"db", "transactional_db"} & set(request.fixturenames):
        return
    transactional = "transactional_db" in request.fixturenames or bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    reference_data_ensure()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Factories set a password on every user; the production hasher would cost ~0.3 s each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def celery_producers_follow_the_broker():
    """Celery caches its producer pool, and with it the broker connection, on the first publish, even an eager
    ``.delay()``. Forgotten after each test, so a later test that switches to a real broker publishes there
    (kombu keeps one pool per broker, so nothing is closed here)."""
    yield
    from brokerage.celery import app

    app._pool = None


@pytest.fixture(autouse=True)
def fresh_books():
    """Each test starts with no in-memory order books, as a freshly started worker would."""
    books_clear()
    yield
    books_clear()


@pytest.fixture(autouse=True)
def forget_failed_authentications():
    """Every test client calls from 127.0.0.1, and many tests send bad credentials on purpose: each test starts
    with a clean failed-authentication count for that address (the counters live in Redis between tests)."""
    AuthFailureGuard.forget(ip="127.0.0.1")
    yield


@pytest.fixture(autouse=True)
def staff_sessions_verified_with_otp(monkeypatch):
    """``client.force_login(staff)`` stands for a complete sign-in, the second factor included: staff who need one
    (core.staff_auth) get a confirmed authenticator and a session verified with it, as the sign-in form would
    leave it. Only the test client's ``force_login`` is changed; ``login()`` and the sign-in form are untouched,
    and the tests of the second factor use them (tests/admin/test_staff_sign_in.py)."""
    from django.test import Client

    from tests.staff import otp_verify_session

    original = Client.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        otp_verify_session(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)


@pytest.fixture
def redis_rates(settings):
    """The default cache on the test Redis (a fresh key prefix: no counts from other tests), and throttle rates
    set by the test through the returned function. Skipped without TEST_REDIS_URL."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    settings.CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": url,
                                   "KEY_PREFIX": f"t-{uuid.uuid4().hex[:12]}"}}

    def rates(**values):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **values}}

    return rates
