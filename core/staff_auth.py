"""How staff sign in (README "Security"): who needs a second factor, and how long a staff session lives.

A second factor (a TOTP code, django-otp) is mandatory for superusers and for staff holding any permission in
``SECOND_FACTOR_PERMISSIONS``: the ones that move money (funding, adjustments) or change risk (who may trade and
what: accounts, KYC, limits, keys, orders, markets and fees). In practice the operations, supervisors and
compliance groups (``console.roles``: compliance approves KYC). A staff user with view permissions only signs in
with a password.

The console (``console.site.ConsoleAdminSite``), the staff pages outside it (``console_staff_required``) and the
report API over a session refuse a user who needs a second factor and has not given one in this session.

Staff sessions end after ``STAFF_SESSION_IDLE_SECONDS`` without a request and ``STAFF_SESSION_MAX_SECONDS`` after
sign-in (``core.security_middleware.StaffSessionMiddleware``); other sessions live ``SESSION_COOKIE_AGE``.
"""

from __future__ import annotations

import time
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.urls import reverse

SECOND_FACTOR_PERMISSIONS = frozenset({
    # money
    "accounts.add_deposit", "accounts.change_deposit", "accounts.change_withdrawal", "accounts.approve_withdrawal",
    "ledger.add_adjustment", "ledger.approve_adjustment",
    # risk: who may trade and withdraw, with what limits and keys
    "accounts.add_clientaccount", "accounts.change_clientaccount", "accounts.freeze_clientaccount",
    "accounts.approve_kyc", "accounts.add_assetlimit", "accounts.change_assetlimit", "accounts.change_apikey",
    # risk: markets, fees and orders
    "trading.change_order", "trading.halt_market", "trading.add_market", "trading.change_market",
    "trading.add_feeschedule", "trading.change_feeschedule", "trading.add_parameterchange",
    "trading.approve_parameterchange", "trading.kill_switch",
})
SIGNED_IN_AT = "staff_signed_in_at"


def second_factor_required(user) -> bool:
    """Whether ``user`` must sign in to the console with a second factor."""
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or not SECOND_FACTOR_PERMISSIONS.isdisjoint(user.get_all_permissions())


def second_factor_missing(user) -> bool:
    """``user`` (``request.user``) needs a second factor and this session was not verified with one."""
    if not second_factor_required(user):
        return False
    is_verified = getattr(user, "is_verified", None)  # set by django_otp's OTPMiddleware on session users
    return not (is_verified and is_verified())


def console_staff_required(view):
    """``staff_member_required`` for staff pages outside the admin site, with the second factor where needed."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        user = request.user
        if user.is_active and user.is_staff and not second_factor_missing(user):
            return view(request, *args, **kwargs)
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))

    return wrapped


def staff_signed_in(sender, request, user, **kwargs) -> None:
    """``user_logged_in`` receiver: the start of a session's absolute lifetime."""
    if request is not None and hasattr(request, "session"):
        request.session[SIGNED_IN_AT] = int(time.time())
