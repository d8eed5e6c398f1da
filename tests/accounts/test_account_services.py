"""Onboarding and the account lifecycle: create, KYC, activate, freeze, close; users and API keys."""

from decimal import Decimal

import pytest

from accounts import services
from accounts.errors import AccountNotEmpty, AccountNotOperational, InvalidTransition
from accounts.models import AccountStatus, ApiKey, ClientAccount, KycStatus, Role
from audit.models import AuditLog
from core.exceptions import DomainError
from ledger import services as ledger
from ledger.models import LedgerAccount
from tests.factories import MarketFactory, UserFactory, fund
from trading import services as trading_services

pytestmark = pytest.mark.django_db
D = Decimal


def audit_actions(account):
    return list(AuditLog.objects.filter(account=account).order_by("id").values_list("action", flat=True))


@pytest.fixture
def onboard(kyc_officer):
    def onboard(ops) -> ClientAccount:
        account = services.client_account_create(legal_name="Acme Capital LLC", kind="institution", acting_user=ops)
        services.kyc_status_set(account=account, kyc_status=KycStatus.APPROVED, acting_user=kyc_officer)
        return services.account_activate(account=account, acting_user=ops)

    return onboard


def test_onboarding_creates_the_ledger_account_and_audits_every_step(ops, kyc_officer):
    account = services.client_account_create(legal_name=" Acme Capital LLC ", kind="institution", tier="vip",
                                              acting_user=ops)
    assert (account.legal_name, account.status, account.tier) == ("Acme Capital LLC", "pending", "vip")
    assert LedgerAccount.objects.get(client=account).code == f"client:{account.pk}"
    with pytest.raises(AccountNotOperational) as exc:
        services.account_activate(account=account, acting_user=ops)
    assert exc.value.code == "kyc_not_approved"

    services.kyc_status_set(account=account, kyc_status=KycStatus.APPROVED, acting_user=kyc_officer,
                            reason="docs ok")
    account = services.account_activate(account=account, acting_user=ops)
    membership = services.client_user_add(account=account, username="acme-admin", email="a@acme.test",
                                          role=Role.ADMIN, password="s3cret-demo", acting_user=ops)

    assert account.status == AccountStatus.ACTIVE
    assert membership.user.check_password("s3cret-demo")
    assert audit_actions(account) == ["account.create", "account.kyc_status_set", "account.activate",
                                      "client_user.add"]
    kyc = AuditLog.objects.get(action="account.kyc_status_set")
    assert (kyc.before["kyc_status"], kyc.after["kyc_status"], kyc.after["reason"]) == ("none", "approved", "docs ok")
    assert kyc.actor == kyc_officer and kyc.actor_label == kyc_officer.username
    assert (account.created_by, account.kyc_approved_by) == (ops, kyc_officer)


@pytest.mark.parametrize("kwargs, field", [({"legal_name": "  "}, "legal_name"), ({"kind": "llc"}, "kind"),
                                           ({"tier": "gold"}, "tier")])
def test_account_creation_validates_its_input(ops, kwargs, field):
    with pytest.raises(DomainError) as exc:
        services.client_account_create(**{"legal_name": "X", "kind": "individual", **kwargs}, acting_user=ops)
    assert exc.value.field == field
    assert not ClientAccount.objects.exists()


def test_freeze_and_unfreeze_and_replays_write_nothing(ops, onboard):
    account = onboard(ops)
    services.account_freeze(account=account, acting_user=ops, reason="court order")
    services.account_freeze(account=account, acting_user=ops)
    account.refresh_from_db()
    assert account.status == AccountStatus.FROZEN
    services.account_unfreeze(account=account, acting_user=ops)
    assert audit_actions(account)[-2:] == ["account.freeze", "account.unfreeze"]
    freeze = AuditLog.objects.get(action="account.freeze")
    assert freeze.after == {**freeze.after, "status": "frozen", "reason": "court order"}


def test_transitions_out_of_order_are_refused(ops):
    account = services.client_account_create(legal_name="P", kind="individual", acting_user=ops)
    with pytest.raises(InvalidTransition):
        services.account_freeze(account=account, acting_user=ops)
    with pytest.raises(InvalidTransition):
        services.account_unfreeze(account=account, acting_user=ops)
    services.account_close(account=account, acting_user=ops)
    with pytest.raises(InvalidTransition):
        services.account_activate(account=account, acting_user=ops)


def test_close_is_refused_while_a_balance_is_non_zero(account, ops):
    fund(account, "BTC", "0.00000001")
    with pytest.raises(AccountNotEmpty) as exc:
        services.account_close(account=account, acting_user=ops)
    assert exc.value.code == "account_not_empty"
    assert "BTC" in exc.value.message
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE


def test_close_is_refused_while_an_order_is_open(account, ops):
    # The refusal comes from the order's hold: every open order reserves what it may spend in the ledger.
    deposit = fund(account, "USD", "200")
    order = trading_services.order_place(account=account, market=MarketFactory(), side="buy", type="limit",
                                         price=D("100"), size=D("1"), client_order_id="o1", acting_user=ops)
    with pytest.raises(AccountNotEmpty) as exc:
        services.account_close(account=account, acting_user=ops)
    assert "open order" in exc.value.message
    trading_services.order_cancel(order=order, acting_user=ops)
    ledger.entry_reverse(entry=deposit)
    services.account_close(account=account, acting_user=ops)


def test_close_is_refused_while_funding_is_pending(account, ops):
    deposit = services.deposit_request(account=account, asset="USD", amount=D("5"), acting_user=None,
                                       bank_reference="B-1")
    with pytest.raises(AccountNotEmpty):
        services.account_close(account=account, acting_user=ops)
    services.deposit_reject(deposit=deposit, acting_user=ops)
    services.account_close(account=account, acting_user=ops)


def test_closing_revokes_the_accounts_api_keys(account, client_admin, ops):
    key, _ = services.api_key_create(user=client_admin, scopes=["read"])
    services.account_close(account=account, acting_user=ops)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert audit_actions(account)[-2:] == ["account.close", "api_key.revoke"]
    with pytest.raises(AccountNotOperational):
        services.api_key_create(user=client_admin, scopes=["read"])


def test_client_user_add_refuses_a_taken_username_and_a_bad_role(account, ops):
    UserFactory(username="taken")
    with pytest.raises(DomainError) as exc:
        services.client_user_add(account=account, username="TAKEN", role=Role.VIEWER, acting_user=ops)
    assert (exc.value.code, exc.value.field) == ("username_taken", "username")
    with pytest.raises(DomainError) as exc:
        services.client_user_add(account=account, username="new", role="owner", acting_user=ops)
    assert exc.value.field == "role"


def test_a_user_without_password_cannot_log_in(account, ops):
    membership = services.client_user_add(account=account, username="bot", role=Role.TRADER, acting_user=ops)
    assert not membership.user.has_usable_password()


def test_role_change_is_audited(account, client_admin, ops):
    services.client_user_role_set(membership=client_admin.membership, role=Role.VIEWER, acting_user=ops)
    entry = AuditLog.objects.get(action="client_user.role_set")
    assert (entry.before, entry.after) == ({"role": "admin"}, {"role": "viewer"})


def test_account_update_changes_only_what_is_given(account, ops):
    services.account_update(account=account, can_trade=False, acting_user=ops)
    services.account_update(account=account, can_trade=False, acting_user=ops)
    account.refresh_from_db()
    assert (account.can_trade, account.can_withdraw) == (False, True)
    assert audit_actions(account).count("account.update") == 1


def test_api_key_scopes_are_bounded_by_role_and_issuing_key(account, ops):
    trader = services.client_user_add(account=account, username="t", role=Role.TRADER, acting_user=ops).user
    with pytest.raises(DomainError) as exc:
        services.api_key_create(user=trader, scopes=["read", "transfer"])
    assert exc.value.code == "scope_not_allowed"
    read_key, _ = services.api_key_create(user=trader, scopes=["read"], allowed_ips=["10.0.0.1"])
    with pytest.raises(DomainError) as exc:
        services.api_key_create(user=trader, scopes=["read"], issuing_key=read_key, allowed_ips=["10.0.0.1"])
    assert exc.value.code == "scope_required"  # a key without manage_keys mints nothing
    read_key, _ = services.api_key_create(user=trader, scopes=["manage_keys", "read"], allowed_ips=["10.0.0.1"])
    with pytest.raises(DomainError):
        services.api_key_create(user=trader, scopes=["trade"], issuing_key=read_key, allowed_ips=["10.0.0.1"])
    with pytest.raises(DomainError) as exc:
        services.api_key_create(user=trader, scopes=["read"], issuing_key=read_key)
    assert exc.value.code == "ip_allow_list_required"
    services.api_key_create(user=trader, scopes=["read"], issuing_key=read_key, allowed_ips=["10.0.0.1"])


def test_api_key_allowed_ips_must_be_addresses(client_admin):
    with pytest.raises(DomainError) as exc:
        services.api_key_create(user=client_admin, scopes=["read"], allowed_ips=["not-an-ip"])
    assert (exc.value.code, exc.value.field) == ("invalid_ip", "allowed_ips")


def test_api_key_revoke_is_audited_once(client_admin):
    key, _ = services.api_key_create(user=client_admin, scopes=["read"])
    services.api_key_revoke(key=key, acting_user=client_admin)
    first = ApiKey.objects.get(pk=key.pk).revoked_at
    services.api_key_revoke(key=key, acting_user=client_admin)
    assert ApiKey.objects.get(pk=key.pk).revoked_at == first
    assert AuditLog.objects.filter(action="api_key.revoke").count() == 1


def test_asset_limit_must_be_positive_and_exact(account, ops):
    with pytest.raises(DomainError) as exc:
        services.asset_limit_set(account=account, asset="USD", daily_withdrawal_limit=D("0.001"), acting_user=ops)
    assert (exc.value.code, exc.value.field) == ("too_precise", "daily_withdrawal_limit")
    with pytest.raises(DomainError) as exc:
        services.asset_limit_set(account=account, asset="DOGE", daily_withdrawal_limit=D("1"), acting_user=ops)
    assert exc.value.code == "unknown_asset"
