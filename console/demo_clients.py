"""Demo client accounts for a local run, called by the ``seed_demo`` command: only on explicit opt-in
(``DEMO_DATA=1``; the command also needs DEBUG on). Safe to run again: accounts, users and deposits are found by
name and idempotency key; the demo API keys and the users' passwords are new on every run (generated, shown once
by the command, stored only as hashes), because a secret is shown only when it is made."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from accounts import services
from accounts.models import (
    ROLE_SCOPES,
    AccountKind,
    AccountStatus,
    ApiKey,
    ClientAccount,
    FundingStatus,
    KycStatus,
    Membership,
    Role,
    Tier,
)

DEMO_KEY_NAME = "demo"


@dataclass(frozen=True)
class DemoClientSpec:
    legal_name: str
    tier: str
    username: str
    funding: dict[str, str]


DEMO_CLIENTS = [
    DemoClientSpec("Aurora Capital Partners LLC", Tier.PROFESSIONAL, "aurora-admin",
                   {"USD": "2500000.00", "BTC": "40", "ETH": "600"}),
    DemoClientSpec("Borealis Asset Management AG", Tier.VIP, "borealis-admin",
                   {"USD": "1000000.00", "BTC": "15", "ETH": "250"}),
]


@dataclass(frozen=True)
class DemoClient:
    account_id: int
    legal_name: str
    username: str
    password: str
    api_key: str

    def __str__(self) -> str:
        return (f"{self.legal_name} (account #{self.account_id}): user {self.username!r} password "
                f"{self.password!r}, API key: Authorization: ApiKey {self.api_key}")


def demo_password() -> str:
    """A new random password (about 96 bits), never a fixed one."""
    return secrets.token_urlsafe(12)


def demo_data_require() -> None:
    if not settings.DEMO_DATA:
        raise ImproperlyConfigured("Demo data is opt-in: set DEMO_DATA=1 (and DEBUG=1) for a local demo.")


@transaction.atomic
def demo_clients_create(*, acting_user=None, stdout=None) -> list[DemoClient]:
    """Onboard, fund and key the demo clients; ``acting_user`` (the ops user, else "system") opens and activates
    them, a demo compliance officer approves their KYC (a second person, README "Security")."""
    demo_data_require()
    clients = [_demo_client(spec, acting_user) for spec in DEMO_CLIENTS]
    for client in clients:
        if stdout is not None:
            stdout.write(str(client) + "\n")
    return clients


def _demo_client(spec: DemoClientSpec, ops) -> DemoClient:
    account = ClientAccount.objects.filter(legal_name=spec.legal_name).first() or services.client_account_create(
        legal_name=spec.legal_name, kind=AccountKind.INSTITUTION, tier=spec.tier, acting_user=ops
    )
    services.kyc_status_set(account=account, kyc_status=KycStatus.APPROVED, acting_user=demo_compliance_officer(),
                            reason="demo")
    if account.status == AccountStatus.PENDING:
        account = services.account_activate(account=account, acting_user=ops, reason="demo")
    password = demo_password()
    membership = Membership.objects.filter(user__username=spec.username).select_related("user").first()
    if membership is None:
        membership = services.client_user_add(account=account, username=spec.username,
                                              email=f"{spec.username}@example.com", role=Role.ADMIN,
                                              password=password, acting_user=ops)
    else:
        membership.user.set_password(password)
        membership.user.save(update_fields=["password"])
    for asset, amount in spec.funding.items():
        _completed_deposit(account, asset, Decimal(amount), requester=membership.user, ops=ops)
    for old in ApiKey.objects.filter(user=membership.user, name=DEMO_KEY_NAME, revoked_at__isnull=True):
        services.api_key_revoke(key=old, acting_user=ops)
    _, secret = services.api_key_create(user=membership.user, name=DEMO_KEY_NAME,
                                        scopes=sorted(ROLE_SCOPES[Role.ADMIN]), acting_user=ops)
    return DemoClient(account.pk, account.legal_name, spec.username, password, secret)


def _demo_staff(username: str):
    """Dual control needs second people (README "Security"). In the demo, staff users who cannot log in (no
    password) play them when needed."""
    from django.contrib.auth import get_user_model

    user, created = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def demo_compliance_officer():
    """The demo's compliance officer, who approves the demo clients' KYC (a staff user who cannot log in)."""
    from django.contrib.auth.models import Group

    from console.roles import COMPLIANCE

    officer = _demo_staff("demo-compliance")
    officer.groups.add(Group.objects.get(name=COMPLIANCE))
    return officer


def _completed_deposit(account, asset: str, amount: Decimal, *, requester, ops) -> None:
    reference = {"bank_reference": f"DEMO-{account.pk}-{asset}"} if asset == "USD" else {"tx_hash": f"demo-{asset}"}
    deposit = services.deposit_request(account=account, asset=asset, amount=amount, acting_user=requester,
                                       idempotency_key=f"demo-funding-{asset}", **reference)
    if deposit.status == FundingStatus.REQUESTED:
        deposit = services.deposit_approve(deposit=deposit, acting_user=ops or _demo_staff("demo-operations"))
    if deposit.status == FundingStatus.APPROVED:
        services.deposit_complete(deposit=deposit, acting_user=_demo_staff("demo-treasury"))


def _demo_staff(username: str):
    """Dual control: a deposit is approved by a named person and completed by another. In the demo, staff users
    who cannot log in (no password) play those people when needed."""
    from django.contrib.auth import get_user_model

    user, created = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user
