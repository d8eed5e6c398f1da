"""The staff groups of the console hold exactly the permissions their role needs."""

import pytest
from django.contrib.auth.models import Group

from console.roles import COMPLIANCE, OPERATIONS, SUPERVISORS, staff_groups_ensure
from tests.admin.conftest import staff_in

pytestmark = pytest.mark.django_db


def perms_of(group_name: str) -> set[str]:
    group = Group.objects.get(name=group_name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_groups_exist_after_migrate_and_ensure_is_idempotent():
    before = {name: perms_of(name) for name in (OPERATIONS, COMPLIANCE, SUPERVISORS)}
    staff_groups_ensure()
    staff_groups_ensure()
    assert Group.objects.filter(name__in=[OPERATIONS, COMPLIANCE, SUPERVISORS]).count() == 3
    assert {name: perms_of(name) for name in before} == before


def test_ensure_restores_a_tampered_group():
    group = Group.objects.get(name=COMPLIANCE)
    group.permissions.clear()
    staff_groups_ensure()
    assert "accounts.export_reports" in perms_of(COMPLIANCE)


def test_compliance_can_view_export_and_approve_kyc_but_change_nothing_else():
    perms = perms_of(COMPLIANCE)
    assert {"accounts.export_reports", "accounts.approve_kyc", "audit.view_auditlog", "ledger.view_journalentry",
            "trading.view_order"} <= perms
    assert all(p in ("accounts.export_reports", "accounts.approve_kyc") or p.split(".")[1].startswith("view_")
               for p in perms)


def test_only_supervisors_decide_and_halt():
    decisions = {"ledger.approve_adjustment", "accounts.approve_withdrawal", "trading.halt_market"}
    assert decisions <= perms_of(SUPERVISORS)
    assert not decisions & perms_of(OPERATIONS)
    assert perms_of(OPERATIONS) <= perms_of(SUPERVISORS)
    assert {"ledger.add_adjustment", "accounts.freeze_clientaccount", "trading.change_order"} <= perms_of(OPERATIONS)


def test_group_membership_grants_the_permissions():
    officer = staff_in(COMPLIANCE)
    supervisor = staff_in(SUPERVISORS)
    assert officer.has_perm("accounts.export_reports") and not officer.has_perm("ledger.add_adjustment")
    assert supervisor.has_perm("ledger.approve_adjustment") and not supervisor.has_perm("accounts.export_reports")
