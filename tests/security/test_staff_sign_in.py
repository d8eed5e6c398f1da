"""Issue 18, finding 10: "40 wrong passwords then the right one worked; no lockout, no 2FA, 14-day sessions."

Through the console's sign-in page, as an attacker would use it: lockout by username and by address
(django-axes), a TOTP code for staff who move money or change risk (django-otp), short staff sessions.
"""

import base64
import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db.models import F
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from rest_framework.test import APIClient

from console.roles import COMPLIANCE, OPERATIONS, SUPERVISORS
from core.staff_auth import SIGNED_IN_AT, second_factor_required
from tests.admin.conftest import staff_in
from tests.factories import StaffFactory, UserFactory
from tests.staff import authenticator, current_code

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
LOGIN = "/admin/login/?next=/admin/"


def sign_in(client, username, password=PASSWORD, code="", address="127.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password, "otp_token": code,
                               "next": "/admin/"}, REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


# --- lockout ---------------------------------------------------------------------------------------------------


def test_forty_wrong_passwords_then_the_right_one_is_refused(supervisor):
    attacker = Client()
    statuses = [sign_in(attacker, "supervisor", f"guess-{n}").status_code for n in range(40)]

    right = sign_in(attacker, "supervisor", PASSWORD, current_code(authenticator(supervisor)))

    assert statuses[:4] == [200] * 4 and set(statuses[4:]) == {429}  # the 5th failure locks
    assert right.status_code == 429 and b"Too many failed sign-ins" in right.content
    assert not signed_in(attacker)
    # The real user elsewhere is locked out too (by username) until the cool-off passes.
    assert sign_in(Client(), "supervisor", code=current_code(authenticator(supervisor)),
                   address="10.1.2.3").status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    later = Client()
    # (The refused sign-ins never reached the code: it is still unused.)
    assert sign_in(later, "supervisor", code=current_code(authenticator(supervisor)),
                   address="10.1.2.3").status_code == 302
    assert signed_in(later)


def test_one_address_trying_many_usernames_is_locked_out(operator):
    spray = Client()
    for n in range(5):
        sign_in(spray, f"staff-{n}", "Winter2026!", address="203.0.113.9")

    from_there = sign_in(spray, "operator", code=current_code(authenticator(operator)), address="203.0.113.9")
    from_elsewhere = Client()
    elsewhere = sign_in(from_elsewhere, "operator", code=current_code(authenticator(operator)),
                        address="198.51.100.4")

    assert from_there.status_code == 429
    assert elsewhere.status_code == 302 and signed_in(from_elsewhere)


def test_forwarded_headers_do_not_change_the_address_that_is_locked(operator):
    attacker = Client()
    for n in range(5):
        attacker.post(LOGIN, {"username": "operator", "password": f"x{n}", "next": "/admin/"},
                      HTTP_X_FORWARDED_FOR=f"192.0.2.{n}", REMOTE_ADDR="203.0.113.7")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


# --- the second factor -----------------------------------------------------------------------------------------


def test_who_needs_a_second_factor(operator, supervisor, compliance_officer):
    viewer = StaffFactory()
    viewer.user_permissions.add(*Group.objects.get(name=COMPLIANCE).permissions.filter(codename__startswith="view_"))
    superuser = UserFactory(is_staff=True, is_superuser=True)

    assert [second_factor_required(u) for u in (operator, supervisor, compliance_officer, superuser)] == [True] * 4
    assert not second_factor_required(viewer) and not second_factor_required(UserFactory())


def test_operations_staff_sign_in_with_password_and_code_only(operator):
    device = authenticator(operator)
    attacker = Client()

    no_code = sign_in(attacker, "operator")
    wrong_code = sign_in(attacker, "operator", code=f"{(int(current_code(device)) + 1) % 10**6:06d}")
    wrong_password = sign_in(attacker, "operator", "guess", code=current_code(device))

    for response in (no_code, wrong_code, wrong_password):  # the same answer: no password oracle
        assert response.status_code == 200
        assert "enter the correct username and password" in response.content.decode()
    assert not signed_in(attacker)
    assert AccessAttempt.objects.get(username="operator").failures_since_start == 3

    time.sleep(1.1)  # a wrong code slows the device down (django-otp: 1 s after one failure, doubling)
    staff = Client()
    code = current_code(device)
    assert sign_in(staff, "operator", code=code).status_code == 302 and signed_in(staff)
    assert not AccessAttempt.objects.exists()  # a success resets the count
    replayed = Client()
    assert sign_in(replayed, "operator", code=code).status_code == 200 and not signed_in(replayed)  # once only


def test_wrong_codes_count_towards_the_lockout(operator):
    device = authenticator(operator)
    attacker = Client()  # knows the password
    for n in range(5):
        sign_in(attacker, "operator", code=f"{n:06d}")
    assert sign_in(attacker, "operator", code=current_code(device)).status_code == 429


def test_staff_without_an_enrolled_authenticator_cannot_sign_in(supervisor):
    response = sign_in(Client(), "supervisor", code="123456")
    assert response.status_code == 200 and "enter the correct username and password" in response.content.decode()


def test_view_only_staff_sign_in_with_a_password():
    viewer = StaffFactory(username="auditor")
    viewer.user_permissions.add(*Group.objects.get(name=COMPLIANCE).permissions.filter(codename__startswith="view_"))
    browser = Client()
    assert sign_in(browser, "auditor").status_code == 302 and signed_in(browser)


def test_a_session_without_the_second_factor_gets_nowhere(operator, compliance_officer):
    """A password-only session (signed in elsewhere, e.g. the browsable API's sign-in) is not a console session
    for staff who need the code: the console, the reports pages, the run-now button and the report API refuse."""
    for user in (operator, compliance_officer):
        half = Client()
        assert half.login(request=HttpRequest(), username=user.username, password=PASSWORD)

        assert half.get("/admin/").status_code == 302
        assert half.get(reverse("admin:accounts_clientaccount_changelist")).status_code == 302
        assert half.get(reverse("admin-reports")).status_code == 302
        assert half.post(reverse("admin-reconciliation-run")).status_code == 302
    api = APIClient()
    api.login(request=HttpRequest(), username=compliance_officer.username, password=PASSWORD)
    assert api.get("/api/v1/reports/").status_code == 403
    verified = APIClient()
    verified.force_login(compliance_officer)  # tests: a sign-in with the code
    assert verified.get("/api/v1/reports/").status_code == 200


# --- sessions --------------------------------------------------------------------------------------------------


def test_staff_sessions_end_after_thirty_idle_minutes(operator):
    staff = Client()
    staff.force_login(operator)

    response = staff.get("/admin/")
    key = staff.cookies["sessionid"].value
    expires = Session.objects.get(session_key=key).expire_date
    time.sleep(1.1)
    staff.get("/admin/")

    assert response.status_code == 200 and staff.cookies["sessionid"]["max-age"] == 1800
    assert Session.objects.get(session_key=key).expire_date > expires  # each request moves the idle expiry
    Session.objects.filter(session_key=key).update(expire_date=F("expire_date") - timedelta(minutes=31))
    assert staff.get("/admin/").status_code == 302


def test_staff_sessions_end_ten_hours_after_sign_in_however_busy(operator):
    staff = Client()
    staff.force_login(operator)
    session = staff.session
    session[SIGNED_IN_AT] = int(time.time()) - 10 * 3600 - 1
    session.save()

    assert staff.get("/admin/").status_code == 302
    assert staff.get("/admin/").status_code == 302  # signed out, not just refused once


def test_client_user_sessions_last_twelve_hours_at_most():
    user = UserFactory()
    browser = Client()
    browser.login(request=HttpRequest(), username=user.username, password=PASSWORD)
    assert browser.session.get_expiry_age() == 12 * 3600


# --- enrolment -------------------------------------------------------------------------------------------------


def test_enrolling_an_authenticator_shows_its_key_once_and_it_works(capsys, caplog):
    alice = staff_in(SUPERVISORS, username="alice")
    call_command("staff_otp_enrol", "alice")
    out = capsys.readouterr().out
    key = out.split("add it by hand: key ")[1].split()[0]

    code = totp(base64.b32decode(key + "=" * (-len(key) % 8)))
    browser = Client()

    assert "otpauth://totp/" in out and "█" in out  # the QR code, drawn on the terminal
    assert sign_in(browser, "alice", code=f"{code:06d}").status_code == 302 and signed_in(browser)
    assert not any(key in record.getMessage() for record in caplog.records)
    call_command("staff_otp_enrol", "alice", "--replace")  # a lost phone: the old key stops working
    assert sign_in(Client(), "alice", code=f"{totp(base64.b32decode(key + '=' * (-len(key) % 8))):06d}",
                   address="10.0.0.2").status_code == 200
    assert alice.totpdevice_set.count() == 1


def test_enrolment_is_for_staff_and_codes_are_printed_on_local_runs_only():
    UserFactory(username="client-bob")
    staff_in(OPERATIONS, username="ops-dan")
    with pytest.raises(CommandError, match="No staff user"):
        call_command("staff_otp_enrol", "client-bob")
    with pytest.raises(CommandError, match="local run"):
        call_command("staff_otp_code", "ops-dan")  # DEBUG is off
