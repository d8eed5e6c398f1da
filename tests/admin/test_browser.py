"""The operations console in a real browser: Debian's headless Chromium driven by Playwright against the live
server (transactional tests: the server thread sees what the test commits, and the test sees what it commits)."""

import os
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import AccountStatus, ClientAccount
from audit.models import AuditLog
from console.roles import SUPERVISORS
from core.staff_auth import second_factor_required
from ledger.models import Adjustment, AdjustmentStatus
from tests.admin.conftest import staff_in
from tests.factories import ClientAccountFactory, MarketFactory, assert_balance, ledger_account_of
from tests.staff import authenticator, current_code
from trading.models import Market, MarketStatus

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/ci-system-deps.sh installs Debian's chromium in CI")
        pytest.skip(f"{CHROMIUM} is not installed here (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's ORM calls stay synchronous and safe.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def plain_http_cookies(settings):
    """The live server speaks plain HTTP; production's Secure cookies would never be sent back to it."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture
def open_page(browser, live_server):
    """``open_page(user)``: a fresh browser context (its own cookies) logged in as ``user`` on the dashboard."""
    contexts = []

    def open_as(user):
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        log_in(page, user.username, PASSWORD, code_of(user))
        page.wait_for_selector("#console-dashboard")
        return page

    yield open_as
    for context in contexts:
        context.close()


def code_of(user) -> str:
    """What the user's authenticator app shows now (staff who need a second factor), else nothing."""
    return current_code(authenticator(user)) if second_factor_required(user) else ""


def log_in(page, username: str, password: str, code: str = "") -> None:
    page.goto(reverse("admin:login"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.fill("#id_otp_token", code)
    page.click("input[type=submit]")


def run_action(page, changelist: str, pk: int, action: str) -> None:
    page.goto(reverse(changelist))
    page.check(f'input[name="_selected_action"][value="{pk}"]')
    page.select_option('select[name="action"]', action)
    page.click('button[name="index"]')


def success_messages(page) -> str:
    return page.inner_text("ul.messagelist")


def test_logging_in(browser, live_server, operator):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()

    log_in(page, operator.username, "wrong password", code_of(operator))
    assert "enter the correct username and password" in page.inner_text(".errornote")
    log_in(page, operator.username, PASSWORD)  # operations staff need their authenticator's code too
    assert "enter the correct username and password" in page.inner_text(".errornote")

    log_in(page, operator.username, PASSWORD, code_of(operator))
    page.wait_for_selector("#console-dashboard")
    assert "Brokerage operations console" in page.inner_text("#site-name")
    assert "Markets today" in page.inner_text("#markets-panel")
    assert "Reconciliation" in page.inner_text("#reconciliation-panel")
    context.close()


def test_freezing_an_account(open_page, operator):
    account = ClientAccountFactory(legal_name="Acme Trading GmbH")
    page = open_page(operator)

    run_action(page, "admin:accounts_clientaccount_changelist", account.pk, "freeze")
    page.fill("#id_reason", "Sanctions screening hit")
    page.click('input[name="apply"]')

    assert "Frozen: 1 of 1" in success_messages(page)
    assert ClientAccount.objects.get(pk=account.pk).status == AccountStatus.FROZEN
    audit = AuditLog.objects.get(action="account.freeze")
    assert (audit.actor_id, audit.after["reason"]) == (operator.pk, "Sanctions screening hit")
    page.goto(reverse("admin:accounts_clientaccount_change", args=[account.pk]))
    assert "Frozen" in page.inner_text(".field-status")


def test_maker_checker_approval(open_page, supervisor):
    account = ClientAccountFactory(legal_name="Goodwill Client SA")
    checker = staff_in(SUPERVISORS, username="checker")
    maker_page = open_page(supervisor)

    maker_page.goto(reverse("admin:ledger_adjustment_add"))
    maker_page.select_option("#id_account", str(ledger_account_of(account).pk))
    assert "Goodwill Client SA" in maker_page.inner_text("#id_account option:checked")
    maker_page.select_option("#id_asset", "USD")
    maker_page.fill("#id_amount", "75.25")
    maker_page.fill("#id_reason", "Refund of a fee charged twice")
    maker_page.click('input[name="_save"]')
    assert "another user must approve it" in success_messages(maker_page)
    adjustment = Adjustment.objects.get()

    maker_page.click("#approve-adjustment")  # the proposer tries to approve their own
    assert "Four-eyes rule" in maker_page.inner_text("ul.messagelist .error")
    assert Adjustment.objects.get().status == AdjustmentStatus.PROPOSED

    checker_page = open_page(checker)
    assert "Goodwill Client SA" in checker_page.inner_text("#approvals-panel")
    checker_page.click(f'#approvals-panel a[href$="/adjustment/{adjustment.pk}/change/"]')
    checker_page.click("#approve-adjustment")

    assert f"Adjustment #{adjustment.pk} approved and posted" in success_messages(checker_page)
    approved = Adjustment.objects.get()
    assert (approved.status, approved.decided_by_id, approved.proposed_by_id) == ("approved", checker.pk, supervisor.pk)
    assert_balance(account, "USD", Decimal("75.25"))
    checker_page.goto(reverse("admin:accounts_clientaccount_change", args=[account.pk]))
    assert "75.25" in checker_page.inner_text("#client-balances")


def test_halting_a_market(open_page, supervisor):
    market = MarketFactory(symbol="ETH-USD", base_id="ETH", quote_id="USD")
    page = open_page(supervisor)

    run_action(page, "admin:trading_market_changelist", market.pk, "halt")

    assert "Halted: 1 of 1" in success_messages(page)
    assert Market.objects.get(pk=market.pk).status == MarketStatus.HALTED
    assert AuditLog.objects.get(action="market.status_set").actor_id == supervisor.pk
    page.goto(reverse("admin:index"))
    assert "Halted" in page.inner_text("#markets-panel")


def test_onboarding_a_client_user_and_a_trading_key(open_page, browser, live_server, operator):
    """Add a user in the console; the user sets a password in a browser from the e-mailed link; a trading key is
    proposed by one staff user and approved by another, who sees its secret once."""
    import re

    from django.core import mail

    from accounts.models import ApiKey, Membership

    account = ClientAccountFactory(legal_name="Acme Onboarding Ltd")
    supervisor = staff_in(SUPERVISORS, username="supervisor-b")
    page = open_page(operator)
    page.goto(reverse("admin:accounts_clientaccount_change", args=[account.pk]))
    page.click("#add-client-user")
    page.fill("#id_username", "acme-trader")
    page.fill("#id_email", "trader@acme.example")
    page.select_option("#id_role", "trader")
    page.click('input[name="_save"]')
    assert "A set-password link was e-mailed to trader@acme.example." in success_messages(page)

    link = re.search(r"https?://\S+(/account/set-password/\S+/)", mail.outbox[-1].body).group(1)
    client_user = browser.new_context(base_url=live_server.url).new_page()
    client_user.goto(link)
    client_user.fill("#id_new_password1", "a long client passphrase")
    client_user.fill("#id_new_password2", "a long client passphrase")
    client_user.click("#set-password")  # a real browser sends Origin: the CSRF check must accept it
    client_user.wait_for_selector("#password-set")
    assert Membership.objects.get(user__username="acme-trader").user.check_password("a long client passphrase")

    page.click("#issue-api-key")
    page.check('input[value="read"]')
    page.check('input[value="trade"]')
    page.click('input[name="_save"]')
    assert "a different staff user must approve it" in success_messages(page)
    request_url = page.url
    assert not ApiKey.objects.filter(user__username="acme-trader").exists()

    approver = open_page(supervisor)
    approver.goto(request_url)
    approver.click("#approve-key-request")
    secret = approver.inner_text("#api-key-value").removeprefix("Authorization: ApiKey ").strip()
    key = ApiKey.objects.get(user__username="acme-trader")
    assert secret.startswith(key.prefix + ".") and key.scopes == ["read", "trade"]
    client_user.context.close()


def test_the_console_and_the_api_docs_run_under_the_content_security_policy(browser, live_server, operator):
    """The policy forbids inline scripts and other origins (README "Security"): the console's scripts (the
    changelist's select-all) and Swagger UI still run, nothing is blocked and nothing is fetched elsewhere."""
    ClientAccountFactory(legal_name="Policy Test Ltd")
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    blocked, requested = [], []
    page.on("console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text
            else None)
    page.on("request", lambda request: requested.append(request.url))

    log_in(page, operator.username, PASSWORD, code_of(operator))
    page.wait_for_selector("#console-dashboard")
    page.goto(reverse("admin:accounts_clientaccount_changelist"))
    page.click("#action-toggle")  # admin/js/actions.js
    assert page.is_checked('input[name="_selected_action"]')
    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock-tag", timeout=30_000)  # Swagger UI rendered the schema

    assert "Brokerage back office API" in page.inner_text(".swagger-ui .info")
    assert blocked == []
    assert [url for url in requested if not url.startswith((live_server.url, "data:"))] == []
    context.close()
