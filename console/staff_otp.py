"""Enrolling a staff user's authenticator (TOTP, django-otp) and showing it once on a terminal.

The key is stored in the database (django-otp's TOTPDevice) and shown only to whoever runs the command: never
logged, never written to the audit log (which records that a device was enrolled, by whom and for whom).
"""

from __future__ import annotations

import base64
import io

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.services import audit_record

DEVICE_NAME = "authenticator"


@transaction.atomic
def staff_totp_enrol(*, user, acting_user=None, replace: bool = False) -> TOTPDevice:
    """Give ``user`` a new confirmed TOTP device; ``replace`` removes the ones they had (a lost phone)."""
    removed = 0
    if replace:
        removed, _ = TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=True)
    audit_record(acting_user=acting_user, action="staff.totp_enrol", obj=device,
                 after={"user": user.get_username(), "device": device.persistent_id, "replaced": removed})
    return device


def totp_secret(device: TOTPDevice) -> str:
    """The key as authenticator apps take it when typed in (base32, no padding)."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def totp_enrolment_text(device: TOTPDevice) -> str:
    """What the user needs to add the device to an authenticator app: a QR code, the URI and the key."""
    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(device.config_url)
    picture = io.StringIO()
    qr.print_ascii(out=picture, invert=True)
    return (
        f"Authenticator for {device.user.get_username()}: scan this QR code with an authenticator app\n"
        f"{picture.getvalue()}"
        f"or add it by hand: key {totp_secret(device)} (TOTP, SHA-1, 6 digits, 30 s)\n"
        f"URI: {device.config_url}\n"
    )
