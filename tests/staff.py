"""Staff sign-in helpers of the tests: authenticators (TOTP) and sessions verified with them."""

from __future__ import annotations

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.staff_auth import second_factor_required


def authenticator(user) -> TOTPDevice:
    """The user's confirmed TOTP device, enrolled if they have none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)


def current_code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the user's authenticator app shows now (``steps_ahead`` 30-second steps later)."""
    device.refresh_from_db()
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits,
                drift=device.drift + steps_ahead)
    return f"{code:0{device.digits}d}"


def otp_verify_session(client, user) -> None:
    """Mark the test client's session as verified with the user's authenticator, when the user needs one."""
    if not second_factor_required(user):
        return
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = authenticator(user).persistent_id
    session.save()
