"""Manual adjustments under maker-checker: the rules live in ledger.services, whatever the caller."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from audit.models import AuditLog
from core.exceptions import Conflict, DomainError, Forbidden
from ledger import services
from ledger.errors import InsufficientFunds, InvalidAmount
from ledger.models import Adjustment, AdjustmentStatus, Balance, JournalEntry, Posting, Purpose
from tests.factories import ClientAccountFactory, assert_balance, fund, ledger_account_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_ledger(db):
    return ledger_account_of(ClientAccountFactory())


def propose(account, by, amount="125.50", asset="USD", reason="Refund of a duplicated fee"):
    return services.adjustment_propose(
        account=account, asset=asset, amount=Decimal(amount), reason=reason, acting_user=by
    )


def equity_balance(asset: str) -> Decimal:
    row = Balance.objects.filter(account=services.firm_account(Purpose.EQUITY), asset_id=asset).first()
    return row.amount if row else Decimal(0)


def test_proposal_posts_nothing_and_is_audited(client_ledger, operator):
    adjustment = propose(client_ledger, operator)

    assert adjustment.status == AdjustmentStatus.PROPOSED
    assert adjustment.proposed_by == operator
    assert JournalEntry.objects.count() == 0
    assert_balance(client_ledger, "USD", "0")
    audit = AuditLog.objects.get(action="adjustment.propose")
    assert (audit.actor, audit.object_id, audit.account_id) == (operator, str(adjustment.pk), client_ledger.client_id)
    assert audit.after["amount"] == "125.50"


def test_supervisor_approves_another_users_proposal_with_one_balanced_entry(client_ledger, operator, supervisor):
    adjustment = propose(client_ledger, operator, amount="125.50")

    approved = services.adjustment_approve(adjustment=adjustment, acting_user=supervisor)

    assert approved.status == AdjustmentStatus.APPROVED
    assert approved.decided_by == supervisor and approved.decided_at is not None
    entry = JournalEntry.objects.get()
    assert (entry.key, entry.kind, entry.created_by) == (f"adjustment:{adjustment.pk}", "adjustment", supervisor)
    assert approved.entry == entry
    postings = {p.account_id: p.amount for p in Posting.objects.filter(entry=entry)}
    equity = services.firm_account(Purpose.EQUITY)
    assert postings == {client_ledger.pk: Decimal("-125.50"), equity.pk: Decimal("125.50")}
    assert_balance(client_ledger, "USD", "125.50", held="0")
    assert equity_balance("USD") == Decimal("-125.50")
    assert AuditLog.objects.filter(action="adjustment.approve", actor=supervisor).count() == 1


def test_approving_again_changes_nothing(client_ledger, operator, supervisor, other_supervisor):
    adjustment = propose(client_ledger, operator, amount="0.00000001", asset="BTC")
    first = services.adjustment_approve(adjustment=adjustment, acting_user=supervisor)

    again = services.adjustment_approve(adjustment=adjustment, acting_user=other_supervisor)

    assert again.entry_id == first.entry_id
    assert again.decided_by == supervisor
    assert JournalEntry.objects.count() == 1
    assert_balance(client_ledger, "BTC", "0.00000001")
    assert AuditLog.objects.filter(action="adjustment.approve").count() == 1


def test_proposer_can_never_approve_or_reject_their_own(client_ledger, supervisor):
    adjustment = propose(client_ledger, supervisor)

    with pytest.raises(Forbidden) as approve_error:
        services.adjustment_approve(adjustment=adjustment, acting_user=supervisor)
    with pytest.raises(Forbidden) as reject_error:
        services.adjustment_reject(adjustment=adjustment, acting_user=supervisor, reason="changed my mind")

    assert approve_error.value.code == reject_error.value.code == "four_eyes"
    adjustment.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.PROPOSED and adjustment.decided_by is None
    assert JournalEntry.objects.count() == 0


def test_superuser_is_no_exception_to_four_eyes(client_ledger):
    from tests.factories import UserFactory

    root = UserFactory(is_staff=True, is_superuser=True)
    adjustment = propose(client_ledger, root)
    with pytest.raises(Forbidden):
        services.adjustment_approve(adjustment=adjustment, acting_user=root)


def test_the_database_refuses_a_self_approved_adjustment(client_ledger, operator):
    adjustment = propose(client_ledger, operator)
    with pytest.raises(IntegrityError), transaction.atomic():
        Adjustment.objects.filter(pk=adjustment.pk).update(decided_by=operator)


def test_operations_and_compliance_cannot_approve(client_ledger, operator, supervisor, compliance_officer):
    adjustment = propose(client_ledger, supervisor)

    for user in (operator, compliance_officer):
        with pytest.raises(Forbidden):
            services.adjustment_approve(adjustment=adjustment, acting_user=user)
        with pytest.raises(Forbidden):
            services.adjustment_reject(adjustment=adjustment, acting_user=user, reason="no")
    assert Adjustment.objects.get().status == AdjustmentStatus.PROPOSED


def test_compliance_cannot_propose(client_ledger, compliance_officer):
    with pytest.raises(Forbidden):
        propose(client_ledger, compliance_officer)
    assert not Adjustment.objects.exists()


def test_debit_adjustment_needs_available_funds_and_stays_proposed(client_ledger, operator, supervisor):
    fund(client_ledger, "USD", "100")
    adjustment = propose(client_ledger, operator, amount="-100.01")

    with pytest.raises(InsufficientFunds):
        services.adjustment_approve(adjustment=adjustment, acting_user=supervisor)

    adjustment.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.PROPOSED and adjustment.entry is None
    assert_balance(client_ledger, "USD", "100")

    exact = propose(client_ledger, operator, amount="-100.00")
    services.adjustment_approve(adjustment=exact, acting_user=supervisor)
    assert_balance(client_ledger, "USD", "0")
    assert equity_balance("USD") == Decimal("100.00")


def test_rejection_posts_nothing_needs_a_reason_and_is_final(client_ledger, operator, supervisor):
    adjustment = propose(client_ledger, operator)
    with pytest.raises(DomainError) as missing_reason:
        services.adjustment_reject(adjustment=adjustment, acting_user=supervisor, reason="  ")
    assert missing_reason.value.code == "reason_required"

    rejected = services.adjustment_reject(adjustment=adjustment, acting_user=supervisor, reason="No evidence")

    assert rejected.status == AdjustmentStatus.REJECTED and rejected.decided_by == supervisor
    assert AuditLog.objects.get(action="adjustment.reject").after["reason"] == "No evidence"
    with pytest.raises(Conflict):
        services.adjustment_approve(adjustment=adjustment, acting_user=supervisor)
    assert JournalEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("amount", "asset", "code"),
    [("0", "USD", "invalid_amount"), ("0.001", "USD", "too_precise"), ("1", "XXX", "unknown_asset")],
)
def test_invalid_proposals_are_refused(client_ledger, operator, amount, asset, code):
    with pytest.raises(DomainError) as error:
        propose(client_ledger, operator, amount=amount, asset=asset)
    assert error.value.code == code
    assert not Adjustment.objects.exists()


def test_only_client_accounts_are_adjusted(operator):
    with pytest.raises(DomainError) as error:
        propose(services.firm_account(Purpose.FEES), operator)
    assert error.value.code == "invalid_account"


def test_invalid_amount_type_is_refused(client_ledger, operator):
    with pytest.raises(InvalidAmount):
        services.adjustment_propose(account=client_ledger, asset="USD", amount=1.5, reason="x", acting_user=operator)
