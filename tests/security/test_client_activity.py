"""Issue 18, finding 7: "The client's /api/v1/audit-log/ shows internal staff reasons ('AML: SAR filed ... do not
tip off client') and that compliance exported its statement, plus staff user ids."

The client sees its own actions and their outcomes only; the console keeps the full audit log.
"""

import json
from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Withdrawal
from audit.models import AuditLog
from ledger import services as ledger
from tests.api import api_client_for
from tests.factories import allow_destination, ledger_account_of
from tests.trading.helpers import place

pytestmark = pytest.mark.django_db
SAR = "AML: SAR filed 2026-11-02, do not tip off client"


@pytest.fixture
def history(operator, supervisor, other_supervisor, compliance_officer):
    """A client's account after a month of ordinary activity and some internal staff work on it."""
    from tests.factories import MarketFactory

    alice = api_client_for()
    account = alice.account
    deposit = services.deposit_request(account=account, asset="USD", amount="5000", acting_user=alice.user,
                                       bank_reference="BANK-1")
    services.deposit_approve(deposit=deposit, acting_user=operator)
    services.deposit_complete(deposit=deposit, acting_user=supervisor)  # dual control: a second person completes
    allow_destination(account, "USD", "GB29 0001")
    services.account_freeze(account=account, acting_user=supervisor, reason=SAR)
    services.account_unfreeze(account=account, acting_user=supervisor, reason="Cleared by MLRO, see case 4411")
    requested = alice.post("/api/v1/withdrawals/", {"asset": "USD", "amount": "100", "bank_reference": "GB29 0001"},
                           format="json", HTTP_IDEMPOTENCY_KEY="w-1").json()
    alice.post(f"/api/v1/withdrawals/{requested['id']}/cancel/", {"reason": "changed my mind"}, format="json")
    rejected = services.withdrawal_request(account=account, asset="USD", amount="200", idempotency_key="w-2",
                                           acting_user=alice.user, bank_reference="GB29 0001")
    services.withdrawal_reject(withdrawal=rejected, acting_user=supervisor, reason="Internal: mule pattern, SAR")
    proposal = ledger.adjustment_propose(account=ledger_account_of(account), asset="USD", amount=Decimal("12.50"),
                                         reason="Goodwill after complaint 77 (staff note)", acting_user=operator)
    ledger.adjustment_approve(adjustment=proposal, acting_user=other_supervisor)
    place(account, MarketFactory(), "buy", size="0.01", price="100", client_order_id="mine-1")
    compliance = APIClient()
    compliance.force_login(compliance_officer)
    exported = compliance.get("/api/v1/reports/account_statement/",
                              {"from": "2020-01-01", "to": "2030-01-01", "account": account.pk, "format": "csv"})
    assert exported.status_code == 200
    b"".join(exported.streaming_content)
    return alice


def test_the_client_sees_its_own_actions_and_outcomes_only(history, operator, supervisor, compliance_officer):
    response = history.get("/api/v1/audit-log/?limit=200")
    entries = response.json()["results"]
    text = json.dumps(entries)

    actions = {e["action"] for e in entries}
    assert actions == {"deposit.request", "deposit.approve", "deposit.complete", "account.freeze",
                       "account.unfreeze", "withdrawal.request", "withdrawal.cancel", "withdrawal.reject",
                       "adjustment.approve", "order.place", "api_key.create"}
    assert not {"report.export", "adjustment.propose"} & actions  # compliance activity, internal proposals
    for secret in (SAR, "MLRO", "mule pattern", "complaint 77", operator.username, supervisor.username,
                   compliance_officer.username):
        assert secret not in text
    own_key = f"{history.user.username} (api-key {history.api_key.prefix})"
    assert {e["actor"] for e in entries} == {own_key, history.user.username, "operations", "system"}
    for entry in entries:
        for values in (entry["before"] or {}, entry["after"] or {}):
            assert not {"approved_by", "requested_by", "decided_by", "second_approved_by", "entry", "hold",
                        "user", "error"} & set(values)
    freeze = next(e for e in entries if e["action"] == "account.freeze")
    assert (freeze["actor"], freeze["after"]) == ("operations", {
        "legal_name": history.account.legal_name, "kind": "institution", "status": "frozen", "kyc_status": "approved",
        "tier": "standard", "can_trade": True, "can_withdraw": True})
    cancelled = next(e for e in entries if e["action"] == "withdrawal.cancel")
    assert cancelled["after"]["reason"] == "changed my mind"  # the client's own words
    assert cancelled["after"]["status"] == "cancelled"
    rejected = next(e for e in entries if e["action"] == "withdrawal.reject")
    assert rejected["after"]["status"] == "rejected" and "reason" not in rejected["after"]
    adjustment = next(e for e in entries if e["action"] == "adjustment.approve")
    assert adjustment["after"] == {"asset": "USD", "amount": "12.500000000000000000", "status": "approved"}


def test_the_console_keeps_the_full_audit_log(history, client, supervisor):
    client.force_login(supervisor)
    page = client.get(reverse("admin:audit_auditlog_changelist") + f"?account__id__exact={history.account.pk}")

    assert page.status_code == 200
    assert AuditLog.objects.filter(account=history.account, action="report.export").exists()
    assert AuditLog.objects.get(action="account.freeze").after["reason"] == SAR
    assert Withdrawal.objects.get(idempotency_key="w-2").reason == "Internal: mule pattern, SAR"


def test_filtering_by_action_cannot_reach_hidden_rows(history):
    for action in ("report.export", "adjustment.propose"):
        assert history.get(f"/api/v1/audit-log/?action={action}").json()["results"] == []
