"""Issue 18, money: each attack of the review reproduced through the API, the console or raw SQL, and refused.

#3 one person credits a client; a deposit notice of 99999999999999999999.99 USD with no reference.
#4 three 9,000 USD withdrawals to one destination in a minute, each under the four-eyes threshold.
#14a withdrawals to any address at all. #14b a decimal with a trailing newline.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.errors import FourEyesViolation
from accounts.models import Deposit, FundingStatus, Role, Withdrawal, WithdrawalDestination
from audit.models import AuditLog
from console.roles import OPERATIONS, SUPERVISORS
from core.exceptions import Forbidden
from ledger.errors import InvalidAmount
from ledger.money import to_decimal
from tests.api import api_client_for
from tests.factories import StaffFactory, allow_destination, assert_balance, fund

pytestmark = pytest.mark.django_db
D = Decimal
V1 = "/api/v1"


def staff(group: str, username: str):
    user = StaffFactory(username=username)
    user.groups.add(Group.objects.get(name=group))
    return user


# --- #3 deposits: dual control, in the service and in the database ----------------------------------------------


def test_the_requester_cannot_approve_and_the_approver_cannot_complete(ops, ops2, account):
    deposit = services.deposit_request(account=account, asset="USD", amount=D("1000000"), acting_user=ops,
                                       bank_reference="WIRE-1")
    with pytest.raises(FourEyesViolation) as exc:
        services.deposit_approve(deposit=deposit, acting_user=ops)
    assert exc.value.code == "self_approval"
    services.deposit_approve(deposit=deposit, acting_user=ops2)
    with pytest.raises(FourEyesViolation) as exc:
        services.deposit_complete(deposit=deposit, acting_user=ops2)
    assert exc.value.code == "second_person_required"
    assert_balance(account, "USD", "0")

    deposit = services.deposit_complete(deposit=deposit, acting_user=ops)

    assert (deposit.requested_by, deposit.approved_by, deposit.completed_by) == (ops, ops2, ops)
    assert_balance(account, "USD", "1000000")


def test_a_client_notice_still_needs_two_people_of_the_firm(account, client_admin, ops, ops2):
    """The client's notice is a claim, not a second pair of eyes: one operations user cannot both approve and
    complete it."""
    deposit = services.deposit_request(account=account, asset="BTC", amount=D("2"), acting_user=client_admin,
                                       tx_hash="0xfeed")
    services.deposit_approve(deposit=deposit, acting_user=ops)
    with pytest.raises(FourEyesViolation):
        services.deposit_complete(deposit=deposit, acting_user=ops)
    services.deposit_complete(deposit=deposit, acting_user=ops2)
    assert_balance(account, "BTC", "2")


@pytest.mark.parametrize("who", ["nobody", "client"])
def test_nobody_and_no_user_of_the_client_account_decides_on_its_deposit(account, client_admin, ops, who):
    acting = None if who == "nobody" else client_admin
    deposit = services.deposit_request(account=account, asset="USD", amount=D("5"), acting_user=ops,
                                       bank_reference="WIRE-2")
    with pytest.raises(FourEyesViolation) as exc:
        services.deposit_approve(deposit=deposit, acting_user=acting)
    assert exc.value.code == ("approver_required" if who == "nobody" else "self_approval")


def _raw(sql: str, params) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_database_refuses_one_person_credits_that_bypass_the_service(account, ops, ops2):
    deposit = services.deposit_request(account=account, asset="USD", amount=D("10"), acting_user=ops,
                                       bank_reference="WIRE-3")
    table = Deposit._meta.db_table
    with pytest.raises(IntegrityError, match="deposit_approver_not_requester"):
        _raw(f"UPDATE {table} SET status = 'approved', approved_by_id = requested_by_id WHERE id = %s", [deposit.pk])
    with pytest.raises(IntegrityError, match="deposit_approved_has_approver"):
        _raw(f"UPDATE {table} SET status = 'approved' WHERE id = %s", [deposit.pk])
    services.deposit_approve(deposit=deposit, acting_user=ops2)
    entry = services.deposit_complete(deposit=deposit, acting_user=ops).entry
    with pytest.raises(IntegrityError, match="deposit_completer_not_approver"):
        _raw(f"UPDATE {table} SET completed_by_id = approved_by_id WHERE id = %s", [deposit.pk])
    with pytest.raises(IntegrityError, match="deposit_completer_not_approver"):
        _raw(f"UPDATE {table} SET completed_by_id = NULL WHERE id = %s", [deposit.pk])
    assert Deposit.objects.get(pk=deposit.pk).completed_by == ops and entry is not None


def test_a_client_cannot_notify_an_absurd_deposit_or_one_without_a_reference():
    alice = api_client_for(role=Role.ADMIN)
    huge = alice.post(f"{V1}/deposits/", {"asset": "USD", "amount": "99999999999999999999.99",
                                          "bank_reference": "WIRE"}, format="json")
    assert (huge.status_code, huge.json()["code"], huge.json()["field"]) == (400, "deposit_notice_too_large",
                                                                             "amount")
    unreferenced = alice.post(f"{V1}/deposits/", {"asset": "USD", "amount": "100"}, format="json")
    assert (unreferenced.status_code, unreferenced.json()["code"], unreferenced.json()["field"]) == (
        400, "reference_required", "bank_reference")
    no_hash = alice.post(f"{V1}/deposits/", {"asset": "BTC", "amount": "1"}, format="json")
    assert (no_hash.status_code, no_hash.json()["code"]) == (400, "reference_required")
    assert not Deposit.objects.exists()

    at_the_bound = alice.post(f"{V1}/deposits/", {"asset": "BTC", "amount": "500", "tx_hash": "0xabc"},
                              format="json")
    above = alice.post(f"{V1}/deposits/", {"asset": "BTC", "amount": "500.00000001", "tx_hash": "0xabd"},
                       format="json")
    assert (at_the_bound.status_code, above.status_code) == (201, 400)


def test_a_client_cannot_notify_a_deposit_of_an_asset_without_a_bound(settings):
    settings.DEPOSIT_NOTICE_MAX_AMOUNTS = {"USD": D("100")}
    alice = api_client_for(role=Role.ADMIN)
    response = alice.post(f"{V1}/deposits/", {"asset": "ETH", "amount": "1", "tx_hash": "0x1"}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "deposit_notice_too_large")


def test_operations_may_record_a_deposit_above_the_client_notice_bound(ops, ops2, account):
    deposit = services.deposit_request(account=account, asset="USD", amount=D("50000000"), acting_user=ops,
                                       bank_reference="WIRE-BIG")
    services.deposit_approve(deposit=deposit, acting_user=ops2)
    services.deposit_complete(deposit=deposit, acting_user=ops)
    assert_balance(account, "USD", "50000000")


# --- #4 withdrawals: four-eyes over a rolling 24 hours ------------------------------------------------------------


@pytest.fixture
def bob():
    """An account admin with 100,000 USD and one bank account on the address book."""
    client = api_client_for(role=Role.ADMIN)
    fund(client.account, "USD", "100000")
    allow_destination(client.account, "USD", "DE89 3704 0044 0532 0130 00")
    return client


def withdraw(client, key, amount, **destination):
    body = {"asset": "USD", "amount": amount, **(destination or {"bank_reference": "DE89 3704 0044 0532 0130 00"})}
    return client.post(f"{V1}/withdrawals/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_splitting_a_withdrawal_does_not_escape_four_eyes(client, bob, settings):
    settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS = {"USD": D("10000")}
    ids = [withdraw(bob, f"split-{n}", "9000.00").json()["id"] for n in range(3)]

    withdrawals = [Withdrawal.objects.get(pk=pk) for pk in ids]
    assert [w.requires_four_eyes for w in withdrawals] == [False, True, True]

    supervisor = staff(SUPERVISORS, "supervisor")
    client.force_login(supervisor)
    client.post(reverse("admin:accounts_withdrawal_changelist"),
                {"action": "approve", "_selected_action": ids}, follow=True)
    statuses = [Withdrawal.objects.get(pk=pk).status for pk in ids]
    assert statuses == [FundingStatus.APPROVED, FundingStatus.REQUESTED, FundingStatus.REQUESTED]

    client.force_login(staff(SUPERVISORS, "supervisor2"))
    client.post(reverse("admin:accounts_withdrawal_changelist"),
                {"action": "approve", "_selected_action": ids[1:]}, follow=True)
    assert {Withdrawal.objects.get(pk=pk).status for pk in ids} == {FundingStatus.APPROVED}


def test_what_was_given_back_or_is_older_than_a_day_does_not_count(bob, settings):
    settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS = {"USD": D("10000")}
    first = Withdrawal.objects.get(pk=withdraw(bob, "a", "9000.00").json()["id"])
    bob.post(f"{V1}/withdrawals/{first.pk}/cancel/", {}, format="json")
    assert not Withdrawal.objects.get(pk=withdraw(bob, "b", "9000.00").json()["id"]).requires_four_eyes
    Withdrawal.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    assert not Withdrawal.objects.get(pk=withdraw(bob, "c", "9000.00").json()["id"]).requires_four_eyes
    assert Withdrawal.objects.get(pk=withdraw(bob, "d", "1000.01").json()["id"]).requires_four_eyes


def test_one_destination_fed_by_several_accounts_needs_four_eyes(bob, settings):
    settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS = {"USD": D("10000")}
    carol = api_client_for(role=Role.ADMIN)
    fund(carol.account, "USD", "100000")
    allow_destination(carol.account, "USD", "DE89 3704 0044 0532 0130 00")
    assert not Withdrawal.objects.get(pk=withdraw(bob, "b-1", "6000.00").json()["id"]).requires_four_eyes
    assert Withdrawal.objects.get(pk=withdraw(carol, "c-1", "6000.00").json()["id"]).requires_four_eyes


# --- #14a the withdrawal address book -----------------------------------------------------------------------------


def test_a_withdrawal_to_an_address_off_the_book_is_refused(bob):
    response = withdraw(bob, "x", "10.00", bank_reference="GB33 BUKB 2020 1555 5555 55")
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        403, "destination_not_allowed", "bank_reference")
    assert_balance(bob.account, "USD", "100000", held="0")


def test_a_new_destination_cools_off_and_its_management_is_audited(bob, settings):
    settings.WITHDRAWAL_DESTINATION_COOL_OFF = timedelta(hours=24)
    added = bob.post(f"{V1}/withdrawal-destinations/", {"asset": "BTC", "address": "bc1qnew", "label": "cold"},
                     format="json")
    assert added.status_code == 201
    body = added.json()
    usable_from = WithdrawalDestination.objects.get(pk=body["id"]).usable_from
    assert timedelta(hours=23, minutes=59) < usable_from - timezone.now() <= timedelta(hours=24)
    fund(bob.account, "BTC", "1")

    too_soon = withdraw(bob, "btc-1", "0.5", asset="BTC", blockchain_address="bc1qnew")
    assert (too_soon.status_code, too_soon.json()["code"]) == (403, "destination_cooling_off")

    WithdrawalDestination.objects.filter(pk=body["id"]).update(usable_from=timezone.now() - timedelta(seconds=1))
    assert withdraw(bob, "btc-2", "0.5", asset="BTC", blockchain_address="bc1qnew").status_code == 201

    removed = bob.post(f"{V1}/withdrawal-destinations/{body['id']}/remove/", {}, format="json")
    assert removed.status_code == 200
    after = withdraw(bob, "btc-3", "0.1", asset="BTC", blockchain_address="bc1qnew")
    assert (after.status_code, after.json()["code"]) == (403, "destination_not_allowed")
    listed = [d["address"] for d in bob.get(f"{V1}/withdrawal-destinations/").json()["results"]]
    assert listed == ["DE89 3704 0044 0532 0130 00"]
    assert list(AuditLog.objects.filter(object_type="accounts.withdrawaldestination").order_by("id")
                .values_list("action", "actor")) == [
        ("withdrawal_destination.add", bob.user.pk), ("withdrawal_destination.remove", bob.user.pk)]


def test_withdraw_body_cannot_smuggle_a_second_destination(bob):
    """A fiat withdrawal goes to its bank reference: a listed bank reference with an unlisted blockchain
    address is still only the bank reference's withdrawal, and the other way round is refused."""
    response = withdraw(bob, "y", "10.00", bank_reference="NOT LISTED", blockchain_address="bc1qevil")
    assert (response.status_code, response.json()["code"]) == (403, "destination_not_allowed")


@pytest.mark.parametrize("role, scopes", [(Role.TRADER, None), (Role.ADMIN, ["read", "trade"])])
def test_only_an_account_admin_with_transfer_manages_the_address_book(bob, role, scopes):
    other = api_client_for(account=bob.account, role=role, scopes=scopes)
    response = other.post(f"{V1}/withdrawal-destinations/", {"asset": "USD", "address": "MINE"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "scope_required")
    entry = WithdrawalDestination.objects.get(account=bob.account)
    removal = other.post(f"{V1}/withdrawal-destinations/{entry.pk}/remove/", {}, format="json")
    assert (removal.status_code, removal.json()["code"]) == (403, "scope_required")
    assert WithdrawalDestination.objects.filter(account=bob.account, removed_at__isnull=True).count() == 1

    # The service holds the same line whatever face calls it: a trader, or an admin of another account.
    outsider = api_client_for(role=Role.ADMIN).user
    for user in [outsider] + ([other.user] if role == Role.TRADER else []):
        with pytest.raises(Forbidden) as exc:
            services.withdrawal_destination_add(account=bob.account, asset="USD", address="MINE", acting_user=user)
        assert exc.value.code == "account_admin_required"


def test_another_account_cannot_see_or_remove_my_destinations(bob):
    mallory = api_client_for(role=Role.ADMIN)
    entry = WithdrawalDestination.objects.get(account=bob.account)
    assert mallory.get(f"{V1}/withdrawal-destinations/").json()["results"] == []
    assert mallory.post(f"{V1}/withdrawal-destinations/{entry.pk}/remove/", {}, format="json").status_code == 404


def test_operations_manage_the_address_book_in_the_console(client, bob):
    operator = staff(OPERATIONS, "operator")
    client.force_login(operator)
    response = client.post(reverse("admin:accounts_withdrawaldestination_add"),
                           {"account": bob.account.pk, "asset": "USD", "address": "CH93 0076 2011", "label": "HQ"})
    assert response.status_code == 302
    entry = WithdrawalDestination.objects.get(address="CH93 0076 2011")
    assert entry.added_by == operator and entry.usable_from > timezone.now()
    client.post(reverse("admin:accounts_withdrawaldestination_changelist"),
                {"action": "remove", "_selected_action": [entry.pk]}, follow=True)
    entry.refresh_from_db()
    assert (entry.removed_by, entry.removed_at is not None) == (operator, True)
    assert set(AuditLog.objects.filter(object_type="accounts.withdrawaldestination", actor=operator)
               .values_list("action", flat=True)) == {"withdrawal_destination.add", "withdrawal_destination.remove"}

    compliance = StaffFactory(username="auditor")
    compliance.groups.add(Group.objects.get(name="compliance"))
    client.force_login(compliance)
    assert client.get(reverse("admin:accounts_withdrawaldestination_add")).status_code == 403


# --- #14b decimals: a trailing newline is not part of a number ----------------------------------------------------


@pytest.mark.parametrize("amount", ["1\n", "1.00\n", " 1", "1 ", "\t1", "1\r\n"])
def test_an_amount_with_surrounding_whitespace_is_malformed(bob, amount):
    response = withdraw(bob, "ws", amount)
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "malformed_decimal", "amount")
    assert not Withdrawal.objects.exists()


@pytest.mark.parametrize("amount", ["1\n", " 1", "1 "])
def test_the_service_parser_refuses_surrounding_whitespace_too(amount):
    with pytest.raises(InvalidAmount):
        to_decimal(amount, field="amount")
    assert to_decimal("1.50") == D("1.50")
