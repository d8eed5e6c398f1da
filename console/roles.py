"""Staff groups of the operations console and the Django permissions each one holds.

``staff_groups_ensure()`` creates or updates the groups to exactly these permissions. It runs after every
``migrate`` (post_migrate, connected in ``console.apps``) and may be called again at any time.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

OPERATIONS = "operations"
COMPLIANCE = "compliance"
SUPERVISORS = "supervisors"

CONSOLE_APPS = ("audit", "accounts", "ledger", "events", "trading")

# Changes that operations staff make through the console (each one goes through a service that audits it).
OPERATIONS_PERMISSIONS = [
    "accounts.add_clientaccount",
    "accounts.change_clientaccount",
    "accounts.freeze_clientaccount",
    "accounts.add_deposit",
    "accounts.change_deposit",
    "accounts.change_withdrawal",
    "accounts.change_apikey",
    # Client onboarding: add client users and change their roles, issue keys (keys that move money: proposals).
    "accounts.add_membership",
    "accounts.change_membership",
    "accounts.issue_apikey",
    "accounts.add_assetlimit",
    "accounts.change_assetlimit",
    "accounts.add_withdrawaldestination",
    "accounts.change_withdrawaldestination",
    "trading.change_order",
    "trading.kill_switch",  # a client's kill switch: cancel all its orders and refuse new ones (an emergency stop)
    "trading.add_spreadchange",
    "ledger.add_adjustment",
    "ledger.add_reconciliationrun",
    "events.redeliver_webhookendpoint",
]
# Four-eyes decisions and market control on top of what operations may do. Fee-rate and market-parameter
# changes are proposed (change_market, change_feeschedule) and approved by another supervisor.
SUPERVISOR_PERMISSIONS = [
    "ledger.approve_adjustment",
    "accounts.approve_withdrawal",
    "accounts.approve_apikeyrequest",
    "accounts.approve_kyc",
    "trading.halt_market",
    "trading.add_market",
    "trading.change_market",
    "trading.add_feeschedule",
    "trading.change_feeschedule",
    # the quoting desk: spreads (four eyes), market pricing, exposure limits, the firm's inventory funding
    "trading.approve_spreadchange",
    "trading.add_marketpricing",
    "trading.change_marketpricing",
    "trading.add_inventorylimit",
    "trading.change_inventorylimit",
    "trading.add_inventoryfunding",
    "trading.add_conversionlimit",
    "trading.change_conversionlimit",
    "trading.add_parameterchange",
    "trading.approve_parameterchange",
]
# Compliance changes nothing but approves KYC (a second person to whoever opened the account).
COMPLIANCE_PERMISSIONS = ["accounts.export_reports", "accounts.approve_kyc"]


def _view_permissions() -> list[Permission]:
    return list(Permission.objects.filter(content_type__app_label__in=CONSOLE_APPS, codename__startswith="view_"))


def _named(perms: list[str]) -> list[Permission]:
    wanted = Q(pk__in=[])
    for perm in perms:
        app_label, codename = perm.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(wanted))
    if len(found) != len(perms):
        missing = set(perms) - {f"{p.content_type.app_label}.{p.codename}" for p in found}
        raise LookupError(f"Permissions missing from the database: {sorted(missing)}")
    return found


def group_permissions() -> dict[str, list[Permission]]:
    views = _view_permissions()
    operations = views + _named(OPERATIONS_PERMISSIONS)
    return {
        OPERATIONS: operations,
        COMPLIANCE: views + _named(COMPLIANCE_PERMISSIONS),
        SUPERVISORS: operations + _named(SUPERVISOR_PERMISSIONS),
    }


def staff_groups_ensure() -> dict[str, Group]:
    """Create the staff groups and set their permissions to exactly the ones above. Idempotent."""
    groups = {}
    for name, perms in group_permissions().items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(perms)
        groups[name] = group
    return groups


def staff_groups_on_migrate(sender, apps=global_apps, using="default", verbosity=0, **kwargs) -> None:
    """post_migrate handler: make sure the console apps' permissions exist, then the groups."""
    if not global_apps.is_installed("django.contrib.auth"):
        return
    for label in CONSOLE_APPS:
        create_permissions(global_apps.get_app_config(label), verbosity=0, interactive=False, using=using)
    staff_groups_ensure()
