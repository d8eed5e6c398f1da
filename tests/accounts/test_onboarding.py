"""Client onboarding services: users invited with a one-time set-password link, keys issued by staff, and dual
control for keys that move money (enforced by the service and by the database)."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import IntegrityError, connection, transaction

from accounts import services
from accounts.models import ApiKey, ApiKeyRequest, ApiKeyRequestStatus, Membership, Role
from audit.models import AuditLog
from console.roles import OPERATIONS, SUPERVISORS
from core.exceptions import DomainError
from tests.factories import ClientAccountFactory, MembershipFactory, StaffFactory, assert_secret_stored_nowhere

pytestmark = pytest.mark.django_db
BASE = "https://backoffice.example.com"


def staff(group: str, username: str):
    user = StaffFactory(username=username)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def ops():
    return staff(OPERATIONS, "ops-olga")


@pytest.fixture
def supervisor():
    return staff(SUPERVISORS, "sup-sam")


@pytest.fixture
def other_supervisor():
    return staff(SUPERVISORS, "sup-sue")


@pytest.fixture
def account():
    return ClientAccountFactory(legal_name="Acme Trading Ltd")


@pytest.fixture
def trader(account):
    return MembershipFactory(account=account, role=Role.TRADER).user


class refused:
    """``with refused("four_eyes"):`` the block raises a DomainError with that code."""

    def __init__(self, code: str):
        self.code = code

    def __enter__(self):
        self.raises = pytest.raises(DomainError)
        self.info = self.raises.__enter__()
        return self.info

    def __exit__(self, *exc):
        swallowed = self.raises.__exit__(*exc)
        assert self.info.value.code == self.code, (self.info.value.code, self.info.value.message)
        return swallowed


def link_in(message) -> str:
    return re.search(r"https?://\S+/account/set-password/\S+/", message.body).group(0)


# --- users ----------------------------------------------------------------------------------------------------


def test_invite_creates_a_user_without_password_and_mails_a_one_time_link_after_commit(
        account, ops, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as pending:
        membership, delivery = services.client_user_invite(account=account, username="acme-ops",
                                                           email="ops@acme.example", role=Role.TRADER,
                                                           acting_user=ops, base_url="http://ignored")
        assert delivery.sent is None and mail.outbox == []  # nothing leaves before the commit
    for callback in pending:
        callback()
    assert delivery.sent is True and str(delivery) == "A set-password link was e-mailed to ops@acme.example."
    user = membership.user
    assert (membership.account, membership.role, user.email, user.has_usable_password()) == (
        account, Role.TRADER, "ops@acme.example", False)
    [message] = mail.outbox
    assert message.to == ["ops@acme.example"] and "Acme Trading Ltd" in message.body
    assert link_in(message).startswith("http://ignored/account/set-password/")
    actions = list(AuditLog.objects.filter(account=account).order_by("id").values_list("action", "actor_label"))
    assert actions == [("client_user.add", "ops-olga"), ("client_user.password_link_sent", "ops-olga")]


def test_the_link_points_at_public_base_url_when_set(account, ops, settings, django_capture_on_commit_callbacks):
    settings.PUBLIC_BASE_URL = BASE
    with django_capture_on_commit_callbacks(execute=True):
        services.client_user_invite(account=account, username="u1", email="u1@acme.example", acting_user=ops,
                                    base_url="http://evil.example")
    assert link_in(mail.outbox[0]).startswith(f"{BASE}/account/set-password/")


def test_a_failed_e_mail_is_reported_and_logged_never_raised(account, ops, settings, caplog,
                                                             django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 1  # nothing listens
    with django_capture_on_commit_callbacks(execute=True):
        membership, delivery = services.client_user_invite(account=account, username="u2", email="u2@acme.example",
                                                           acting_user=ops, base_url=BASE)
    assert delivery.sent is False and "send it again" in str(delivery)
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert any("Set-password e-mail to u2@acme.example failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("username, email, code", [
    ("acme-ops", "", "email_required"),
    ("acme-ops", "not-an-address", "invalid_email"),
    ("", "a@acme.example", "username_taken"),
])
def test_invite_refuses_bad_input(account, ops, username, email, code):
    with refused(code):
        services.client_user_invite(account=account, username=username, email=email, acting_user=ops, base_url=BASE)
    assert not Membership.objects.filter(account=account).exists()


def test_only_staff_with_the_permission_add_users(account):
    compliance_user = staff("compliance", "comp-carl")
    with refused("permission_denied"):
        services.client_user_invite(account=account, username="x", email="x@acme.example",
                                    acting_user=compliance_user, base_url=BASE)


def test_deactivating_a_user_revokes_their_keys_and_reactivating_keeps_them_revoked(account, trader, ops):
    key, _ = services.api_key_issue(user=trader, scopes=["read"], acting_user=ops)
    membership = trader.membership
    services.client_user_deactivate(membership=membership, acting_user=ops, reason="left the firm")
    trader.refresh_from_db()
    key.refresh_from_db()
    assert trader.is_active is False and key.revoked_at is not None
    services.client_user_deactivate(membership=membership, acting_user=ops)  # replay: nothing more
    assert AuditLog.objects.filter(action="client_user.deactivate").count() == 1
    with refused("user_inactive"):
        services.password_link_send(membership=membership, acting_user=ops, base_url=BASE)
    services.client_user_reactivate(membership=membership, acting_user=ops, reason="back")
    trader.refresh_from_db()
    key.refresh_from_db()
    assert trader.is_active is True and key.revoked_at is not None


# --- keys -----------------------------------------------------------------------------------------------------


def test_a_read_only_key_is_issued_at_once_and_its_secret_is_stored_nowhere(trader, ops, caplog):
    caplog.set_level(logging.DEBUG)
    key, secret = services.api_key_issue(user=trader, name="reporting", scopes=["read"], acting_user=ops)
    assert secret.startswith(key.prefix + ".") and services.api_key_matches(key, secret.partition(".")[2])
    assert_secret_stored_nowhere(secret)
    assert secret not in caplog.text
    row = AuditLog.objects.get(action="api_key.create", object_id=str(key.pk))
    assert (row.actor, row.after["scopes"]) == (ops, ["read"])


@pytest.mark.parametrize("scopes", [["read", "trade"], ["trade"], ["read", "transfer"]])
def test_a_key_that_moves_money_cannot_be_issued_by_one_person(scopes, account, ops):
    admin_user = MembershipFactory(account=account, role=Role.ADMIN).user
    with refused("dual_control_required"):
        services.api_key_issue(user=admin_user, scopes=scopes, acting_user=ops)
    assert not ApiKey.objects.filter(user=admin_user).exists()


def test_dual_control_proposer_cannot_approve_a_second_person_issues_the_key(trader, ops, supervisor,
                                                                             other_supervisor, caplog):
    caplog.set_level(logging.DEBUG)
    request = services.api_key_request_propose(user=trader, name="oms", scopes=["read", "trade"],
                                               allowed_ips=["203.0.113.7"], acting_user=supervisor)
    assert (request.status, request.key) == (ApiKeyRequestStatus.PROPOSED, None)
    assert not ApiKey.objects.filter(user=trader).exists()
    with refused("four_eyes"):
        services.api_key_request_approve(request=request, acting_user=supervisor)
    with refused("permission_denied"):
        services.api_key_request_approve(request=request, acting_user=ops)  # operations may not approve
    request, secret = services.api_key_request_approve(request=request, acting_user=other_supervisor)
    key = request.key
    assert (request.status, request.decided_by, key.user, key.scopes, key.allowed_ips) == (
        ApiKeyRequestStatus.APPROVED, other_supervisor, trader, ["read", "trade"], ["203.0.113.7"])
    assert secret.startswith(key.prefix + ".")
    assert_secret_stored_nowhere(secret)
    assert secret not in caplog.text
    # A replay creates nothing and cannot show the secret again.
    again, no_secret = services.api_key_request_approve(request=request, acting_user=other_supervisor)
    assert (again.key, no_secret, ApiKey.objects.filter(user=trader).count()) == (key, None, 1)
    actions = list(AuditLog.objects.filter(account=trader.membership.account).order_by("id")
                   .values_list("action", "actor_label"))
    assert actions == [("api_key_request.propose", "sup-sam"), ("api_key.create", "sup-sue"),
                       ("api_key_request.approve", "sup-sue")]


def test_a_rejected_request_creates_no_key_and_cannot_be_approved(trader, supervisor, other_supervisor):
    request = services.api_key_request_propose(user=trader, scopes=["trade"], acting_user=supervisor)
    with refused("reason_required"):
        services.api_key_request_reject(request=request, acting_user=other_supervisor, reason=" ")
    with refused("four_eyes"):
        services.api_key_request_reject(request=request, acting_user=supervisor, reason="changed my mind")
    services.api_key_request_reject(request=request, acting_user=other_supervisor,
                                    reason="client asked for read only")
    with refused("already_decided"):
        services.api_key_request_approve(request=request, acting_user=other_supervisor)
    assert not ApiKey.objects.filter(user=trader).exists()


def test_what_held_at_the_proposal_is_checked_again_at_approval(account, trader, ops, supervisor):
    request = services.api_key_request_propose(user=trader, scopes=["read", "trade"], acting_user=ops)
    services.client_user_role_set(membership=trader.membership, role=Role.VIEWER, acting_user=ops)
    with refused("scope_not_allowed"):
        services.api_key_request_approve(request=request, acting_user=supervisor)
    services.client_user_role_set(membership=trader.membership, role=Role.TRADER, acting_user=ops)
    services.client_user_deactivate(membership=trader.membership, acting_user=ops)
    with refused("user_inactive"):
        services.api_key_request_approve(request=request, acting_user=supervisor)
    assert not ApiKey.objects.filter(user=trader).exists()


@pytest.mark.parametrize("scopes, allowed_ips, code", [
    (["trade", "transfer"], [], "scope_not_allowed"),  # beyond a trader's role
    ([], [], "invalid_scope"),
    (["read", "admin"], [], "invalid_scope"),
    (["read", "trade"], ["not-an-ip"], "invalid_ip"),
])
def test_proposals_outside_the_role_or_malformed_are_refused(trader, ops, scopes, allowed_ips, code):
    with refused(code):
        services.api_key_request_propose(user=trader, scopes=scopes, allowed_ips=allowed_ips, acting_user=ops)


def test_a_user_of_the_client_account_cannot_approve_its_keys(account, trader, ops):
    insider = staff(SUPERVISORS, "sup-insider")
    MembershipFactory(account=account, user=insider, role=Role.VIEWER)
    request = services.api_key_request_propose(user=trader, scopes=["trade"], acting_user=ops)
    with refused("self_approval"):
        services.api_key_request_approve(request=request, acting_user=insider)


def test_the_database_refuses_an_approver_equal_to_the_proposer(trader, ops, supervisor):
    request = services.api_key_request_propose(user=trader, scopes=["trade"], acting_user=ops)
    request, _ = services.api_key_request_approve(request=request, acting_user=supervisor)
    with pytest.raises(IntegrityError, match="api_key_request_four_eyes"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE accounts_apikeyrequest SET decided_by_id = proposed_by_id WHERE id = %s",
                           [request.pk])


def test_the_database_refuses_an_approved_request_without_its_key(trader, ops):
    request = services.api_key_request_propose(user=trader, scopes=["trade"], acting_user=ops)
    with pytest.raises(IntegrityError, match="api_key_request_decision_consistent"), transaction.atomic():
        ApiKeyRequest.objects.filter(pk=request.pk).update(status=ApiKeyRequestStatus.APPROVED,
                                                           decided_by=StaffFactory())
