"""Onboarding a client in the console, as an operations officer does it: add a user with a role (who sets a
password from the e-mailed one-time link), manage roles, issue a read-only key, and a trading key under dual
control (proposed by one staff user, approved by another, the secret shown once to the approver)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey, ApiKeyRequest, ApiKeyRequestStatus, Membership, Role
from audit.models import AuditLog
from tests.factories import ClientAccountFactory, MarketFactory, MembershipFactory, assert_secret_stored_nowhere, fund

pytestmark = pytest.mark.django_db
SECRET = re.compile(r"Authorization: ApiKey ([0-9a-f]{12}\.[A-Za-z0-9_\-]+)")


def console(user) -> Client:
    web = Client()
    web.force_login(user)
    return web


@pytest.fixture
def account():
    account = ClientAccountFactory(legal_name="Acme Trading Ltd")
    fund(account, "USD", "10000.00")
    return account


def test_the_account_page_lists_users_and_links_to_onboarding(account, operator):
    MembershipFactory(account=account, role=Role.TRADER)
    page = console(operator).get(f"/admin/accounts/clientaccount/{account.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/admin/accounts/membership/add/?account={account.pk}" in html and "issue an API key" in html


@pytest.mark.django_db(transaction=True)  # the e-mail leaves on the real commit, and the page says so
def test_operator_adds_a_client_user_who_sets_a_password_from_a_one_time_link(account, operator):
    web = console(operator)
    assert web.get(f"/admin/accounts/membership/add/?account={account.pk}").status_code == 200
    response = web.post("/admin/accounts/membership/add/", {
        "account": account.pk, "username": "acme-ops", "email": "ops@acme.example", "role": Role.TRADER,
    })
    membership = Membership.objects.get(user__username="acme-ops")
    assert response.status_code == 302 and response["Location"].endswith(f"/membership/{membership.pk}/change/")
    page = web.get(response["Location"]).content.decode()
    assert "A set-password link was e-mailed to ops@acme.example." in page
    assert (membership.account, membership.role, membership.user.has_usable_password()) == (account, "trader",
                                                                                            False)
    [message] = mail.outbox
    link = re.search(r"http://testserver(/account/set-password/\S+/)", message.body).group(1)

    browser = Client()
    form_page = browser.get(link, follow=True)
    assert form_page.status_code == 200 and b'id="set-password"' in form_page.content
    done = browser.post(form_page.redirect_chain[-1][0],
                        {"new_password1": "a long client passphrase", "new_password2": "a long client passphrase"})
    assert done.status_code == 302 and done["Location"] == "/account/set-password/done/"
    membership.user.refresh_from_db()
    assert membership.user.check_password("a long client passphrase")
    # The link worked once.
    assert b'id="invalid-link"' in Client().get(link, follow=True).content

    # The password signs the client user in to the API (the browsable API's session); the admin stays closed.
    api = Client()
    signed_in = api.post("/api-auth/login/", {"username": "acme-ops", "password": "a long client passphrase",
                                              "next": "/api/v1/account/"})
    assert signed_in.status_code == 302
    assert api.get("/api/v1/account/", HTTP_ACCEPT="application/json").json()["legal_name"] == "Acme Trading Ltd"
    assert api.get("/admin/").status_code == 302  # to the login page: not staff


def test_a_weak_password_is_refused_on_the_set_password_page(account, operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        console(operator).post("/admin/accounts/membership/add/", {
            "account": account.pk, "username": "weak", "email": "weak@acme.example", "role": Role.VIEWER})
    link = re.search(r"http://testserver(/account/set-password/\S+/)", mail.outbox[0].body).group(1)
    browser = Client()
    form_page = browser.get(link, follow=True)
    refused = browser.post(form_page.redirect_chain[-1][0], {"new_password1": "12345678", "new_password2": "12345678"})
    assert refused.status_code == 200 and b"errorlist" in refused.content
    assert not Membership.objects.get(user__username="weak").user.has_usable_password()


def test_a_refused_invitation_shows_on_the_form(account, operator):
    MembershipFactory(account=account, user__username="taken")
    response = console(operator).post("/admin/accounts/membership/add/", {
        "account": account.pk, "username": "taken", "email": "t@acme.example", "role": Role.TRADER})
    assert response.status_code == 200 and b"is taken or empty" in response.content


def test_operator_changes_a_role_through_the_audited_service(account, operator):
    membership = MembershipFactory(account=account, role=Role.VIEWER)
    response = console(operator).post(f"/admin/accounts/membership/{membership.pk}/change/", {"role": Role.ADMIN})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    row = AuditLog.objects.get(action="client_user.role_set", object_id=str(membership.pk))
    assert (row.actor, row.before, row.after) == (operator, {"role": "viewer"}, {"role": "admin"})


def test_deactivate_and_resend_link_from_the_user_list(account, operator, django_capture_on_commit_callbacks):
    membership = MembershipFactory(account=account, role=Role.TRADER)
    key = ApiKey.objects.create(user=membership.user, account=account, prefix="feedfeedfeed", secret_hash="x" * 64,
                                scopes=["read"])
    web = console(operator)
    with django_capture_on_commit_callbacks(execute=True):
        web.post("/admin/accounts/membership/", {"action": "send_password_links", "_selected_action": [membership.pk]})
    assert mail.outbox[0].to == [membership.user.email]
    web.post("/admin/accounts/membership/", {"action": "deactivate", "_selected_action": [membership.pk],
                                             "apply": "1", "reason": "left the firm"})
    membership.user.refresh_from_db()
    key.refresh_from_db()
    assert membership.user.is_active is False and key.revoked_at is not None


def test_compliance_cannot_add_users_or_issue_keys(compliance_officer):
    web = console(compliance_officer)
    assert web.get("/admin/accounts/membership/add/").status_code == 403
    assert web.get("/admin/accounts/apikeyrequest/add/").status_code == 403


def _secret_from(page) -> str:
    return SECRET.search(page.content.decode()).group(1)


def _assert_shown_once(page, web) -> None:
    """The secret is in this response only: not cached, not in a cookie, not in the next page's messages, in no
    table (sessions and the admin's own log included)."""
    secret = _secret_from(page)
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    assert all(secret not in morsel.value for morsel in web.cookies.values())
    assert secret not in web.get("/admin/").content.decode()
    assert_secret_stored_nowhere(secret)


def test_a_read_only_key_is_issued_at_once_and_shown_once(account, operator):
    trader = MembershipFactory(account=account, role=Role.TRADER).user
    web = console(operator)
    assert web.get(f"/admin/accounts/apikeyrequest/add/?user={trader.pk}").status_code == 200
    page = web.post("/admin/accounts/apikeyrequest/add/", {"user": trader.pk, "name": "reporting",
                                                           "scopes": ["read"], "allowed_ips": ""})
    _assert_shown_once(page, web)
    key = ApiKey.objects.get(user=trader)
    assert key.scopes == ["read"] and not ApiKeyRequest.objects.exists()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"ApiKey {_secret_from(page)}")
    assert api.get("/api/v1/account/").json()["scopes"] == ["read"]


def test_a_trading_key_needs_a_second_staff_user(account, supervisor, other_supervisor):
    MarketFactory()
    trader = MembershipFactory(account=account, role=Role.TRADER).user
    proposer = console(supervisor)
    response = proposer.post("/admin/accounts/apikeyrequest/add/", {
        "user": trader.pk, "name": "oms", "scopes": ["read", "trade"], "allowed_ips": "127.0.0.1"})
    request = ApiKeyRequest.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/apikeyrequest/{request.pk}/change/")
    assert not ApiKey.objects.filter(user=trader).exists()
    page = proposer.get(response["Location"]).content.decode()
    assert "the four-eyes rule requires another user" in page

    # The proposer's own approval is refused and creates nothing.
    refused = proposer.post(f"/admin/accounts/apikeyrequest/{request.pk}/approve/", follow=True)
    assert "not approved: Four-eyes rule" in refused.content.decode()
    assert not ApiKey.objects.filter(user=trader).exists()
    assert proposer.get(f"/admin/accounts/apikeyrequest/{request.pk}/approve/").status_code == 405

    approver = console(other_supervisor)
    page = approver.post(f"/admin/accounts/apikeyrequest/{request.pk}/approve/")
    _assert_shown_once(page, approver)
    request.refresh_from_db()
    assert (request.status, request.decided_by, request.key.scopes) == (ApiKeyRequestStatus.APPROVED,
                                                                        other_supervisor, ["read", "trade"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"ApiKey {_secret_from(page)}")
    placed = api.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.01", "price": "100.00"},
                      format="json")
    assert placed.status_code == 201, placed.content
    # Approving again shows no secret.
    again = approver.post(f"/admin/accounts/apikeyrequest/{request.pk}/approve/", follow=True).content.decode()
    assert "cannot be shown again" in again and not SECRET.search(again)


def test_an_operator_may_propose_but_not_approve(account, operator, supervisor):
    trader = MembershipFactory(account=account, role=Role.TRADER).user
    web = console(operator)
    web.post("/admin/accounts/apikeyrequest/add/", {"user": trader.pk, "scopes": ["trade"], "allowed_ips": ""})
    request = ApiKeyRequest.objects.get()
    assert b"key-request-decision" not in web.get(f"/admin/accounts/apikeyrequest/{request.pk}/change/").content
    web.post(f"/admin/accounts/apikeyrequest/{request.pk}/approve/")
    assert ApiKeyRequest.objects.get().status == ApiKeyRequestStatus.PROPOSED
    console(supervisor).post(f"/admin/accounts/apikeyrequest/{request.pk}/reject/", {"reason": "read only please"})
    request.refresh_from_db()
    assert (request.status, request.reason, request.key) == (ApiKeyRequestStatus.REJECTED, "read only please", None)
