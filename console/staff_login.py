"""The console's sign-in form: a password, and for staff who move money or change risk a TOTP code as well
(``core.staff_auth.second_factor_required``), checked in one step.

Every refusal reads the same (wrong password, missing code, wrong code, no authenticator enrolled), so the form
never confirms a password to someone who lacks the code; and every one counts as a failed sign-in for the lockout
(django-axes listens to ``user_login_failed``).
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django_otp import devices_for_user

from core.staff_auth import second_factor_required

logger = logging.getLogger(__name__)

INVALID_LOGIN = (
    "Please enter the correct username and password for a staff account, and the current code of your "
    "authenticator app if your role needs one. Note that both fields may be case-sensitive."
)


class StaffAuthenticationForm(AdminAuthenticationForm):
    error_messages = {**AdminAuthenticationForm.error_messages, "invalid_login": INVALID_LOGIN}

    otp_token = forms.CharField(
        label="Authenticator code", required=False, max_length=16, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}),
        help_text="Operations, supervisors, compliance and administrators: the 6-digit code of your authenticator.",
    )

    def clean(self):
        cleaned = super().clean()  # the password (a wrong one is counted by axes), is_active and is_staff
        user = self.get_user()
        if user is not None and second_factor_required(user):
            device = self._verified_device(user, cleaned.get("otp_token") or "")
            if device is None:
                user_login_failed.send(sender=type(self), request=self.request,
                                       credentials={"username": cleaned.get("username")})
                raise self.get_invalid_login_error()
            user.otp_device = device  # django_otp records it in the session when the user is logged in
        return cleaned

    def _verified_device(self, user, token: str):
        devices = list(devices_for_user(user, confirmed=True))
        if not devices:
            logger.warning("Staff user %s needs a second factor and has no authenticator enrolled",
                           user.get_username())
            return None
        if not token:
            return None
        for device in devices:
            allowed, _ = device.verify_is_allowed()  # a device slowed down by wrong codes refuses for a while
            if allowed and device.verify_token(token):
                return device
        return None
