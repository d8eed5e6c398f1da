"""Scripted onboarding: ``manage.py onboard_client`` and ``manage.py approve_api_key``. The secret goes to the
terminal once, never to a log; a key that moves money needs a second staff user; a refusal leaves nothing."""

from __future__ import annotations

import io
import logging
import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AccountStatus, ApiKey, ApiKeyRequest, ClientAccount, KycStatus, Membership
from audit.models import AuditLog
from console.roles import OPERATIONS, SUPERVISORS
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the command commits, then mails and prints
SECRET = re.compile(r"^Authorization: ApiKey (\S+)$", re.M)


@pytest.fixture
def staff():
    users = {}
    for username, group in (("ops1", OPERATIONS), ("sup1", SUPERVISORS), ("sup2", SUPERVISORS)):
        users[username] = StaffFactory(username=username)
        users[username].groups.add(Group.objects.get(name=group))
    return users


def run(command: str, *args) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


NEW_USER = ["--username", "acme-ops", "--email", "ops@acme.example", "--role", "trader",
            "--base-url", "https://backoffice.example.com"]
ONBOARD = ["--legal-name", "Acme Trading Ltd", *NEW_USER]


@pytest.fixture
def opened(staff):
    """An account ops1 opened; approving its KYC is for a second person (dual control)."""
    return services.client_account_create(legal_name="Acme Trading Ltd", kind="institution", tier="standard",
                                          acting_user=staff["ops1"])


def approving(account) -> list[str]:
    return ["--account", str(account.pk), "--kyc-approved", "--activate", *NEW_USER]


def test_onboarding_with_a_read_only_key_prints_the_secret_once_and_logs_it_nowhere(opened, caplog):
    caplog.set_level(logging.DEBUG)
    out = run("onboard_client", "--acting-user", "sup1", *approving(opened), "--key-scopes", "read")
    account = ClientAccount.objects.get(legal_name="Acme Trading Ltd")
    assert (account.status, account.kyc_status) == (AccountStatus.ACTIVE, KycStatus.APPROVED)
    membership = Membership.objects.get(user__username="acme-ops")
    assert (membership.account, membership.role) == (account, "trader")
    assert "A set-password link was e-mailed to ops@acme.example." in out
    assert mail.outbox[0].to == ["ops@acme.example"]
    assert "https://backoffice.example.com/account/set-password/" in mail.outbox[0].body
    [secret] = SECRET.findall(out)
    assert secret not in caplog.text
    assert not any(secret in str(row.after) for row in AuditLog.objects.all())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"ApiKey {secret}")
    assert api.get("/api/v1/account/").json()["scopes"] == ["read"]
    assert {row.actor.username for row in AuditLog.objects.filter(account=account)} == {"ops1", "sup1"}


def test_whoever_opened_the_account_cannot_approve_its_kyc_in_the_same_command(staff):
    with pytest.raises(CommandError, match="self_approval"):
        run("onboard_client", "--acting-user", "sup1", *ONBOARD, "--kyc-approved", "--activate")
    assert not ClientAccount.objects.exists() and not Membership.objects.exists() and mail.outbox == []


def test_opening_without_kyc_leaves_the_account_pending_for_a_second_person(staff):
    out = run("onboard_client", "--acting-user", "ops1", *ONBOARD, "--key-scopes", "read")
    account = ClientAccount.objects.get(legal_name="Acme Trading Ltd")
    assert account.kyc_status != KycStatus.APPROVED and account.status != AccountStatus.ACTIVE
    assert f"Client account #{account.pk}" in out and SECRET.search(out)


def test_a_trading_key_is_proposed_and_only_another_staff_user_gets_its_secret(staff, opened):
    out = run("onboard_client", "--acting-user", "sup1", *approving(opened), "--key-scopes", "read,trade",
              "--allowed-ip", "127.0.0.1")
    request = ApiKeyRequest.objects.get()
    assert f"manage.py approve_api_key {request.pk} --acting-user" in out and not SECRET.search(out)
    assert not ApiKey.objects.exists()
    with pytest.raises(CommandError, match="four_eyes"):
        run("approve_api_key", str(request.pk), "--acting-user", "sup1")
    with pytest.raises(CommandError, match="permission_denied"):
        run("approve_api_key", str(request.pk), "--acting-user", "ops1")
    out = run("approve_api_key", str(request.pk), "--acting-user", "sup2")
    [secret] = SECRET.findall(out)
    key = ApiKey.objects.get()
    assert (key.scopes, key.allowed_ips, secret.split(".")[0]) == (["read", "trade"], ["127.0.0.1"], key.prefix)
    with pytest.raises(CommandError, match="cannot be shown again"):
        run("approve_api_key", str(request.pk), "--acting-user", "sup2")


def test_rejecting_from_the_command(staff, opened):
    run("onboard_client", "--acting-user", "sup1", *approving(opened), "--key-scopes", "trade")
    request = ApiKeyRequest.objects.get()
    assert "rejected" in run("approve_api_key", str(request.pk), "--acting-user", "sup2", "--reject", "read only")
    request.refresh_from_db()
    assert (request.status, request.reason) == ("rejected", "read only")


def test_a_refusal_leaves_nothing_behind(staff):
    args = ["--legal-name", "Half Done Ltd", "--activate", "--username", "half", "--email", "h@half.example",
            "--base-url", "https://backoffice.example.com"]
    with pytest.raises(CommandError, match="kyc_not_approved"):
        run("onboard_client", "--acting-user", "ops1", *args)
    assert not ClientAccount.objects.filter(legal_name="Half Done Ltd").exists()
    assert not Membership.objects.exists() and mail.outbox == []


@pytest.mark.parametrize("args, message", [
    (["--acting-user", "nobody", *ONBOARD], "not an active staff user"),
    (["--acting-user", "ops1", *ONBOARD[:-2]], "PUBLIC_BASE_URL"),
    (["--acting-user", "ops1", *ONBOARD, "--key-scopes", "read,admin"], "Unknown scopes"),
    (["--acting-user", "ops1", "--account", "999999", *NEW_USER], "No client account"),
])
def test_bad_arguments_are_command_errors(staff, args, message):
    with pytest.raises(CommandError, match=message):
        run("onboard_client", *args)
