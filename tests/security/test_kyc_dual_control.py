"""Issue 18, finding 11: "One operations user onboarded a client alone (create, tier VIP, KYC approved,
activate)." KYC approval is now compliance's or a second person's: never the one who opened the account."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts import services
from accounts.models import AccountStatus, ClientAccount, KycStatus
from core.exceptions import DomainError
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def change_form_data(account, **changes) -> dict:
    data = {"legal_name": account.legal_name, "kyc_status": account.kyc_status, "tier": account.tier,
            "can_trade": "on", "can_withdraw": "on", **changes}
    for prefix in ("memberships", "api_keys", "asset_limits"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data


def run_action(client, action, account):
    return client.post(reverse("admin:accounts_clientaccount_changelist"),
                       {"action": action, ACTION_CHECKBOX_NAME: [account.pk]}, follow=True)


def test_one_operations_user_can_no_longer_onboard_a_client_alone(client, operator, compliance_officer):
    client.force_login(operator)
    client.post(reverse("admin:accounts_clientaccount_add"),
                {"legal_name": "Solo Onboarding Ltd", "kind": "institution", "tier": "vip"})
    account = ClientAccount.objects.get()
    url = reverse("admin:accounts_clientaccount_change", args=[account.pk])

    saved = client.post(url, change_form_data(account, kyc_status="approved"), follow=True)
    as_action = run_action(client, "approve_kyc", account)
    activated = run_action(client, "activate", account)

    account.refresh_from_db()
    assert account.created_by == operator and account.kyc_status == KycStatus.NONE
    assert "permission" in " ".join(messages_of(saved))
    assert as_action.status_code == 200 and "No action selected" in " ".join(messages_of(as_action))
    assert "KYC" in " ".join(messages_of(activated)) and account.status == AccountStatus.PENDING

    client.force_login(compliance_officer)  # a second person, from compliance
    approved = run_action(client, "approve_kyc", account)
    client.force_login(operator)
    run_action(client, "activate", account)

    account.refresh_from_db()
    assert "KYC approved: 1 of 1" in " ".join(messages_of(approved))
    assert (account.kyc_status, account.kyc_approved_by, account.status) == ("approved", compliance_officer,
                                                                              "active")


def test_a_supervisor_cannot_approve_the_kyc_of_an_account_they_opened(supervisor, other_supervisor):
    account = services.client_account_create(legal_name="Own Ltd", acting_user=supervisor)
    with pytest.raises(DomainError) as own:
        services.kyc_status_set(account=account, kyc_status=KycStatus.APPROVED, acting_user=supervisor)
    services.kyc_status_set(account=account, kyc_status=KycStatus.APPROVED, acting_user=other_supervisor)

    assert (own.value.code, ClientAccount.objects.get().kyc_approved_by) == ("self_approval", other_supervisor)


def test_kyc_approval_needs_a_named_person_who_is_not_a_user_of_the_account(compliance_officer):
    account = services.client_account_create(legal_name="Named Ltd", acting_user=None)
    MembershipFactory(account=account, user=compliance_officer)
    with pytest.raises(DomainError) as by_system:
        services.kyc_status_set(account=account, kyc_status=KycStatus.APPROVED, acting_user=None)
    with pytest.raises(DomainError) as by_member:
        services.kyc_status_set(account=account, kyc_status=KycStatus.APPROVED, acting_user=compliance_officer)
    assert (by_system.value.code, by_member.value.code) == ("kyc_approver_required", "self_approval")


def test_the_database_refuses_a_kyc_approver_who_opened_the_account(operator):
    account = services.client_account_create(legal_name="Raw SQL Ltd", acting_user=operator)
    with pytest.raises(IntegrityError, match="client_account_kyc_four_eyes"), transaction.atomic():
        ClientAccount.objects.filter(pk=account.pk).update(kyc_status=KycStatus.APPROVED, kyc_approved_by=operator)


def test_rejecting_kyc_needs_no_second_person_and_clears_the_approval(operator, compliance_officer):
    account = services.client_account_create(legal_name="Later Rejected Ltd", acting_user=operator)
    services.kyc_status_set(account=account, kyc_status=KycStatus.APPROVED, acting_user=compliance_officer)
    services.kyc_status_set(account=account, kyc_status=KycStatus.REJECTED, acting_user=operator,
                            reason="Documents expired")
    account.refresh_from_db()
    assert (account.kyc_status, account.kyc_approved_by, account.kyc_approved_at) == ("rejected", None, None)
