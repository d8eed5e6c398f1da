"""The funding workflow, through the services, with exact balances in the ledger."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from accounts import services
from accounts.errors import AccountNotOperational, FourEyesViolation, InvalidTransition, LimitExceeded
from accounts.models import AccountStatus, Deposit, FundingStatus, Withdrawal
from audit.models import AuditLog
from ledger import selectors as ledger_selectors
from ledger import services as ledger
from ledger.errors import IdempotencyConflict, InsufficientFunds, InvalidAmount
from ledger.models import HoldStatus, JournalEntry, Purpose
from tests.factories import MembershipFactory, StaffFactory, assert_balance

pytestmark = pytest.mark.django_db
D = Decimal


def custody():
    return ledger.firm_account(Purpose.CUSTODY)


def request_btc(account, user, amount="1.5", key="w-1", **kwargs):
    return services.withdrawal_request(account=account, asset="BTC", amount=D(amount), idempotency_key=key,
                                       acting_user=user, blockchain_address="bc1qexample", **kwargs)


def actions(obj):
    return list(AuditLog.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
                .order_by("id").values_list("action", flat=True))


# --- deposits -------------------------------------------------------------------------------------------


def test_deposit_credits_the_client_only_on_completion(account, client_admin, ops, ops2):
    deposit = services.deposit_request(account=account, asset="BTC", amount=D("2.5"), acting_user=client_admin,
                                       tx_hash="0xabc")
    assert_balance(account, "BTC", "0", held="0")
    services.deposit_approve(deposit=deposit, acting_user=ops)
    assert_balance(account, "BTC", "0")

    deposit = services.deposit_complete(deposit=deposit, acting_user=ops2)

    assert (deposit.status, deposit.approved_by, deposit.completed_by) == (FundingStatus.COMPLETED, ops, ops2)
    assert deposit.entry.key == f"deposit:{deposit.pk}"
    assert_balance(account, "BTC", "2.5", held="0")
    assert_balance(custody(), "BTC", "2.5")
    assert ledger_selectors.trial_balance() == {"BTC": D(0)}
    assert actions(deposit) == ["deposit.request", "deposit.approve", "deposit.complete"]
    completed = AuditLog.objects.get(action="deposit.complete", object_id=str(deposit.pk))
    assert (completed.before["status"], completed.after["status"]) == ("approved", "completed")
    assert completed.actor == ops2 and completed.account == account


def test_completing_twice_posts_once(account, ops, ops2):
    deposit = services.deposit_request(account=account, asset="USD", amount=D("10"), acting_user=None,
                                       bank_reference="B-1")
    services.deposit_approve(deposit=deposit, acting_user=ops)
    services.deposit_complete(deposit=deposit, acting_user=ops2)
    services.deposit_complete(deposit=deposit, acting_user=ops2)
    assert_balance(account, "USD", "10")
    assert JournalEntry.objects.filter(kind="deposit").count() == 1
    assert actions(deposit).count("deposit.complete") == 1


def test_a_deposit_is_approved_before_it_is_completed(account, ops):
    deposit = services.deposit_request(account=account, asset="USD", amount=D("10"), acting_user=None,
                                       bank_reference="B-1")
    with pytest.raises(InvalidTransition):
        services.deposit_complete(deposit=deposit, acting_user=ops)


def test_a_rejected_deposit_cannot_be_completed(account, ops):
    deposit = services.deposit_request(account=account, asset="USD", amount=D("10"), acting_user=None,
                                       bank_reference="B-1")
    services.deposit_reject(deposit=deposit, acting_user=ops, reason="no funds arrived")
    with pytest.raises(InvalidTransition) as exc:
        services.deposit_approve(deposit=deposit, acting_user=ops)
    assert exc.value.code == "invalid_transition"
    deposit.refresh_from_db()
    assert (deposit.status, deposit.reason) == ("rejected", "no funds arrived")
    assert_balance(account, "USD", "0")


def test_deposit_idempotency_key_replays_or_conflicts(account):
    first = services.deposit_request(account=account, asset="USD", amount=D("10"), acting_user=None,
                                     idempotency_key="d-1", bank_reference="B-1")
    again = services.deposit_request(account=account, asset="USD", amount=D("10.00"), acting_user=None,
                                     idempotency_key="d-1", bank_reference="B-1")
    assert again.pk == first.pk
    with pytest.raises(IdempotencyConflict):
        services.deposit_request(account=account, asset="USD", amount=D("11"), acting_user=None,
                                 idempotency_key="d-1", bank_reference="B-1")
    assert Deposit.objects.count() == 1


@pytest.mark.parametrize("amount, code", [("0", "not_positive"), ("-1", "not_positive"), ("0.001", "too_precise"),
                                          (0.1, "invalid_amount"), ("abc", "invalid_amount")])
def test_deposit_amount_is_validated(account, amount, code):
    with pytest.raises(InvalidAmount) as exc:
        services.deposit_request(account=account, asset="USD", amount=amount, acting_user=None,
                                 bank_reference="B-1")
    assert (exc.value.code, exc.value.field) == (code, "amount")


def test_deposit_into_a_closed_account_is_refused(account, ops):
    services.account_close(account=account, acting_user=ops)
    with pytest.raises(AccountNotOperational) as exc:
        services.deposit_request(account=account, asset="USD", amount=D("1"), acting_user=None,
                                 bank_reference="B-1")
    assert exc.value.code == "account_closed"


# --- withdrawals ----------------------------------------------------------------------------------------


def test_withdrawal_holds_on_request_and_captures_on_completion(funded, client_admin, ops):
    withdrawal = request_btc(funded, client_admin, "1.5")
    assert withdrawal.hold.key == f"withdrawal:{withdrawal.pk}"
    assert_balance(funded, "BTC", "10", held="1.5")

    services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops)
    withdrawal = services.withdrawal_complete(withdrawal=withdrawal, acting_user=ops, tx_hash="0xfeed")

    assert (withdrawal.status, withdrawal.tx_hash) == ("completed", "0xfeed")
    assert withdrawal.entry.key == f"withdrawal:{withdrawal.pk}"
    withdrawal.hold.refresh_from_db()
    assert (withdrawal.hold.status, withdrawal.hold.remaining) == (HoldStatus.CAPTURED, 0)
    assert_balance(funded, "BTC", "8.5", held="0")
    assert_balance(custody(), "BTC", "8.5")
    assert ledger_selectors.balance_drift() == []
    assert actions(withdrawal) == ["withdrawal.request", "withdrawal.approve", "withdrawal.complete"]


@pytest.mark.parametrize("end", ["reject", "cancel"])
def test_reject_and_cancel_release_the_hold(funded, client_admin, ops, end):
    withdrawal = request_btc(funded, client_admin, "4")
    if end == "reject":
        withdrawal = services.withdrawal_reject(withdrawal=withdrawal, acting_user=ops, reason="sanctions hit")
    else:
        withdrawal = services.withdrawal_cancel(withdrawal=withdrawal, acting_user=client_admin)
    withdrawal.hold.refresh_from_db()
    assert withdrawal.hold.status == HoldStatus.RELEASED
    assert_balance(funded, "BTC", "10", held="0")
    with pytest.raises(InvalidTransition):
        services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops)
    with pytest.raises(InvalidTransition):
        services.withdrawal_complete(withdrawal=withdrawal, acting_user=ops)
    assert actions(withdrawal)[-1] == f"withdrawal.{end}"


def test_an_approved_withdrawal_can_be_rejected_but_not_cancelled(funded, client_admin, ops):
    withdrawal = request_btc(funded, client_admin)
    services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops)
    with pytest.raises(InvalidTransition):
        services.withdrawal_cancel(withdrawal=withdrawal, acting_user=client_admin)
    services.withdrawal_reject(withdrawal=withdrawal, acting_user=ops)
    assert_balance(funded, "BTC", "10", held="0")


def test_a_completed_withdrawal_cannot_be_rejected_and_completing_again_is_a_replay(funded, client_admin, ops):
    withdrawal = request_btc(funded, client_admin)
    services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops)
    services.withdrawal_complete(withdrawal=withdrawal, acting_user=ops)
    services.withdrawal_complete(withdrawal=withdrawal, acting_user=ops)
    with pytest.raises(InvalidTransition):
        services.withdrawal_reject(withdrawal=withdrawal, acting_user=ops)
    assert_balance(funded, "BTC", "8.5", held="0")


def test_withdrawal_beyond_available_is_refused_and_leaves_nothing(funded, client_admin):
    request_btc(funded, client_admin, "9", key="w-a")
    with pytest.raises(InsufficientFunds):
        request_btc(funded, client_admin, "1.00000001", key="w-b")
    assert Withdrawal.objects.count() == 1
    assert_balance(funded, "BTC", "10", held="9")


def test_withdrawal_replay_returns_the_original_and_conflicts_on_other_content(funded, client_admin):
    first = request_btc(funded, client_admin, "1", key="same")
    assert request_btc(funded, client_admin, "1", key="same").pk == first.pk
    with pytest.raises(IdempotencyConflict):
        request_btc(funded, client_admin, "2", key="same")
    assert_balance(funded, "BTC", "10", held="1")
    assert actions(first) == ["withdrawal.request"]


def test_withdrawal_needs_a_destination_of_the_right_kind(funded, client_admin):
    with pytest.raises(services.AccountsError) as exc:
        services.withdrawal_request(account=funded, asset="USD", amount=D("5"), idempotency_key="k",
                                    acting_user=client_admin, blockchain_address="bc1q")
    assert (exc.value.code, exc.value.field) == ("destination_required", "bank_reference")


@pytest.mark.parametrize("change, code", [
    ({"status": AccountStatus.FROZEN}, "account_frozen"),
    ({"status": AccountStatus.PENDING}, "account_not_active"),
    ({"can_withdraw": False}, "withdrawals_disabled"),
    ({"kyc_status": "rejected"}, "kyc_not_approved"),
])
def test_withdrawals_are_refused_unless_the_account_may_withdraw(funded, client_admin, change, code):
    type(funded).objects.filter(pk=funded.pk).update(**change)
    funded.refresh_from_db()
    with pytest.raises(AccountNotOperational) as exc:
        request_btc(funded, client_admin)
    assert exc.value.code == code
    assert_balance(funded, "BTC", "10", held="0")


def test_a_freeze_after_the_request_stops_approval_and_completion(funded, client_admin, ops):
    withdrawal = request_btc(funded, client_admin)
    services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops)
    services.account_freeze(account=funded, acting_user=ops, reason="investigation")
    with pytest.raises(AccountNotOperational):
        services.withdrawal_complete(withdrawal=withdrawal, acting_user=ops)
    services.withdrawal_reject(withdrawal=withdrawal, acting_user=ops)
    assert_balance(funded, "BTC", "10", held="0")


def test_daily_withdrawal_limit_counts_the_last_24_hours_except_given_back(funded, client_admin, ops):
    services.asset_limit_set(account=funded, asset="BTC", daily_withdrawal_limit=D("3"), acting_user=ops)
    cancelled = request_btc(funded, client_admin, "2", key="a")
    services.withdrawal_cancel(withdrawal=cancelled, acting_user=client_admin)
    request_btc(funded, client_admin, "2", key="b")
    request_btc(funded, client_admin, "1", key="c")
    with pytest.raises(LimitExceeded) as exc:
        request_btc(funded, client_admin, "0.00000001", key="d")
    assert (exc.value.code, exc.value.field) == ("daily_limit_exceeded", "amount")
    Withdrawal.objects.update(created_at=Withdrawal.objects.first().created_at - services.DAILY_WINDOW)
    request_btc(funded, client_admin, "3", key="e")


# --- four eyes ------------------------------------------------------------------------------------------


def test_requester_can_never_approve(funded, client_admin):
    withdrawal = request_btc(funded, client_admin)
    with pytest.raises(FourEyesViolation) as exc:
        services.withdrawal_approve(withdrawal=withdrawal, acting_user=client_admin)
    assert exc.value.code == "self_approval"


def test_a_user_of_the_client_account_cannot_approve(funded, client_admin):
    colleague = MembershipFactory(account=funded, role="admin").user
    withdrawal = request_btc(funded, client_admin)
    with pytest.raises(FourEyesViolation):
        services.withdrawal_approve(withdrawal=withdrawal, acting_user=colleague)


def test_below_threshold_one_approval_suffices(funded, client_admin, ops):
    withdrawal = services.withdrawal_request(account=funded, asset="USD", amount=D("10000"), idempotency_key="k",
                                             acting_user=client_admin, bank_reference="DE89 3704")
    assert not withdrawal.requires_four_eyes
    withdrawal = services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops)
    assert (withdrawal.status, withdrawal.approved_by) == ("approved", ops)


def test_above_threshold_needs_two_different_approvers(funded, client_admin, ops, ops2):
    withdrawal = services.withdrawal_request(account=funded, asset="USD", amount=D("10000.01"),
                                             idempotency_key="k", acting_user=client_admin, bank_reference="DE89")
    assert withdrawal.requires_four_eyes

    withdrawal = services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops)
    assert (withdrawal.status, withdrawal.approved_by) == ("requested", ops)
    with pytest.raises(InvalidTransition):
        services.withdrawal_complete(withdrawal=withdrawal, acting_user=ops)
    with pytest.raises(FourEyesViolation) as exc:
        services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops)
    assert exc.value.code == "second_approver_required"

    withdrawal = services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops2)
    assert (withdrawal.status, withdrawal.second_approved_by) == ("approved", ops2)
    assert services.withdrawal_approve(withdrawal=withdrawal, acting_user=ops).status == "approved"
    services.withdrawal_complete(withdrawal=withdrawal, acting_user=ops2)
    assert_balance(funded, "USD", "89999.99", held="0")
    assert actions(withdrawal) == ["withdrawal.request", "withdrawal.approve_first", "withdrawal.approve",
                                   "withdrawal.complete"]


def test_an_asset_without_a_threshold_always_needs_two_approvers(settings):
    settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS = {"USD": D("10000")}
    assert services.withdrawal_needs_four_eyes(asset="BTC", amount=D("0.00000001"))
    settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS = {"BTC": D("0.5")}
    assert not services.withdrawal_needs_four_eyes(asset="BTC", amount=D("0.5"))
    assert services.withdrawal_needs_four_eyes(asset="BTC", amount=D("0.50000001"))


def test_the_database_refuses_a_requester_approval_written_around_the_service(funded, client_admin):
    withdrawal = request_btc(funded, client_admin)
    with pytest.raises(IntegrityError), transaction.atomic():
        Withdrawal.objects.filter(pk=withdrawal.pk).update(approved_by=client_admin)
    other = StaffFactory()
    Withdrawal.objects.filter(pk=withdrawal.pk).update(approved_by=other)
    with pytest.raises(IntegrityError), transaction.atomic():
        Withdrawal.objects.filter(pk=withdrawal.pk).update(second_approved_by=other)


def test_the_database_refuses_a_completed_withdrawal_without_an_entry(funded, client_admin):
    withdrawal = request_btc(funded, client_admin)
    with pytest.raises(IntegrityError), transaction.atomic():
        Withdrawal.objects.filter(pk=withdrawal.pk).update(status=FundingStatus.COMPLETED)


def test_value_is_conserved_through_the_workflow(funded, client_admin, ops, ops2):
    w2 = request_btc(funded, client_admin, "2", key="2")
    w1 = request_btc(funded, client_admin, "6", key="1")
    assert w1.requires_four_eyes and not w2.requires_four_eyes
    for approver in (ops, ops2):
        services.withdrawal_approve(withdrawal=w1, acting_user=approver)
    services.withdrawal_complete(withdrawal=w1, acting_user=ops)
    services.withdrawal_reject(withdrawal=w2, acting_user=ops)
    assert_balance(funded, "BTC", "4", held="0")
    assert_balance(custody(), "BTC", "4")
    assert ledger_selectors.trial_balance() == {"USD": D(0), "BTC": D(0)}
    assert ledger_selectors.balance_drift() == []
