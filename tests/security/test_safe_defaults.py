"""Issue 18, findings 1, 2 and 13: what a deployment gets when it sets nothing, and the demo only on opt-in.

1. ``./run`` created superuser admin/admin and credited demo clients even with DEBUG off, and printed their
   secrets to the service log.
2. DEBUG was on by default.
13. HTTPS, HSTS, the SSL redirect and the proxy SSL header could not be set from the environment; no CSP; the
    API docs loaded Swagger UI from a CDN.
"""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.security.processes import PRODUCTION_SECRET, ROOT, environment, manage, settings_of

SECURITY_SETTINGS = ["DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
                     "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
                     "DEMO_DATA"]


# --- 2 and 13: settings ---------------------------------------------------------------------------------------


def test_nothing_set_means_debug_off_and_https_settings_on():
    values = settings_of(SECURITY_SETTINGS, environment(SECRET_KEY=PRODUCTION_SECRET))

    assert values == {
        "DEBUG": False, "SECURE_SSL_REDIRECT": True, "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"], "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True, "DEMO_DATA": False,
    }


def test_each_https_setting_comes_from_the_environment():
    env = environment(SECRET_KEY=PRODUCTION_SECRET, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="600",
                      SECURE_HSTS_INCLUDE_SUBDOMAINS="0", SECURE_HSTS_PRELOAD="0",
                      SECURE_PROXY_SSL_HEADER="X-Forwarded-Scheme=https", SESSION_COOKIE_SECURE="0",
                      CSRF_COOKIE_SECURE="0")

    values = settings_of(SECURITY_SETTINGS, env)

    assert values == {
        "DEBUG": False, "SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False, "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_SCHEME", "https"], "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False, "DEMO_DATA": False,
    }


def test_debug_off_without_a_secret_key_refuses_to_start():
    result = manage("shell", "-c", "print('started')", env=environment(), check=False)
    assert result.returncode != 0 and "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    env = environment(SECRET_KEY=PRODUCTION_SECRET, ALLOWED_HOSTS="backoffice.example.com")

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_names_what_a_weakened_deployment_lacks():
    env = environment(SECRET_KEY=PRODUCTION_SECRET, ALLOWED_HOSTS="backoffice.example.com",
                      SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0", SESSION_COOKIE_SECURE="0")

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env, check=False)

    assert result.returncode != 0
    assert {"security.W004", "security.W008", "security.W012"} <= set(re.findall(r"security\.W\d+", result.stderr))


# --- 13: the headers a browser gets --------------------------------------------------------------------------


@pytest.mark.django_db
def test_https_redirect_hsts_and_the_proxy_header(settings):
    settings.SECURE_SSL_REDIRECT = True  # ./test turns it off for the plain-HTTP test client; production's default
    browser = Client()

    redirect = browser.get("/admin/login/")
    behind_proxy = browser.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")

    assert (redirect.status_code, redirect["Location"]) == (301, "https://testserver/admin/login/")
    assert behind_proxy.status_code == 200
    assert behind_proxy["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert behind_proxy["X-Frame-Options"] == "DENY" and behind_proxy["X-Content-Type-Options"] == "nosniff"
    assert {c.key: c["secure"] for c in behind_proxy.cookies.values()} == {"csrftoken": True}


@pytest.mark.django_db
def test_the_console_and_the_api_docs_carry_a_content_security_policy():
    browser = Client()
    for path in ("/admin/login/", "/api/docs/"):
        policy = dict(
            directive.strip().split(" ", 1) for directive in browser.get(path)["Content-Security-Policy"].split(";")
        )
        assert policy["script-src"] == "'self'"  # no inline script, no eval, no other origin
        assert policy["default-src"] == policy["connect-src"] == policy["img-src"].split()[0] == "'self'"
        assert policy["frame-ancestors"] == policy["object-src"] == "'none'"


@pytest.mark.django_db
def test_swagger_ui_comes_from_pinned_local_files_and_no_inline_script():
    from drf_spectacular_sidecar import __version__ as sidecar_version  # noqa: F401 (installed, pinned)

    page = Client().get("/api/docs/").content.decode()
    script = Client().get("/api/docs/?script=").content.decode()

    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in sources
    assert all(src.startswith("/") for src in sources), sources  # this origin only: no CDN
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # every script is a file
    assert "SwaggerUIBundle" in script and "/api/schema/" in script
    pinned = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"drf-spectacular-sidecar==[0-9.]+"', pinned)


# --- 1: the demo -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory):
    """A migrated SQLite database of its own, for the demo command's child processes."""
    path = tmp_path_factory.mktemp("demo") / "db.sqlite3"
    manage("migrate", "--noinput", env=environment(DEBUG="1", DATABASE_URL=f"sqlite:///{path}"))
    return f"sqlite:///{path}"


def test_the_demo_is_refused_with_debug_off_even_when_asked_for(demo_database):
    env = environment(SECRET_KEY=PRODUCTION_SECRET, DATABASE_URL=demo_database, DEMO_DATA="1")

    result = manage("seed_demo", env=env, check=False)

    assert result.returncode != 0 and "Refused: demo data and demo users are for local runs" in result.stderr
    assert "created" not in manage("shell", "-c", SUPERUSERS, env=env).stdout


def test_the_demo_needs_the_explicit_opt_in(demo_database):
    env = environment(DEBUG="1", DATABASE_URL=demo_database)

    result = manage("seed_demo", env=env, check=False)

    assert result.returncode != 0 and "demo data is opt-in; set DEMO_DATA=1" in result.stderr
    assert "created" not in manage("shell", "-c", SUPERUSERS, env=env).stdout


SUPERUSERS = """
from django.contrib.auth import get_user_model
print("created" if get_user_model().objects.filter(is_superuser=True).exists() else "none")
"""

CHECK_CREDENTIALS = """
import sys
from django.contrib.auth import get_user_model
from django.test import Client
admin_password, client_user, client_password, api_key = sys.argv[1:5]
User = get_user_model()
admin = User.objects.get(username="admin")
assert admin.check_password(admin_password) and not admin.check_password("admin")
assert User.objects.get(username=client_user).check_password(client_password)
response = Client(SERVER_NAME="localhost").get("/api/v1/balances/", HTTP_AUTHORIZATION=f"ApiKey {api_key}")
assert response.status_code == 200, response.content
print("ok", len(response.json()))
"""


def test_the_local_demo_generates_credentials_shows_them_once_and_never_logs_them(demo_database):
    env = environment(DEBUG="1", DEMO_DATA="1", DATABASE_URL=demo_database, LOG_LEVEL="DEBUG")

    first = manage("seed_demo", env=env)
    second = manage("seed_demo", env=env)

    passwords = [re.search(r"superuser 'admin' password '([^']+)'", run.stdout).group(1) for run in (first, second)]
    clients = re.findall(r"user '([^']+)' password '([^']+)', API key: Authorization: ApiKey (\S+)", second.stdout)
    assert len(clients) == 2 and passwords[0] != passwords[1] and len(passwords[1]) >= 16
    assert "otpauth://totp/" in first.stdout  # the superuser's authenticator, on its first run only
    secrets = [passwords[1], *(secret for client in clients for secret in client[1:])]
    assert not any(secret in second.stderr for secret in secrets)  # the log (stderr) never carries them
    user, password, key = clients[0]
    checked = manage("shell", "-c", CHECK_CREDENTIALS.replace("sys.argv[1:5]", repr([passwords[1], user,
                                                                                       password, key])), env=env)
    assert checked.stdout.splitlines()[-1].startswith("ok ")


@pytest.mark.django_db
def test_no_fixed_password_is_left_in_the_code():
    sources = "\n".join(p.read_text() for p in (ROOT / "console").rglob("*.py"))
    assert "DEMO_ADMIN_PASSWORD" not in sources and '"admin")' not in sources
    assert not get_user_model().objects.filter(username="admin").exists()
