"""Print a staff user's current authenticator code, for local runs only (DEBUG): the demo's superuser signs in
without an authenticator app. Refused with DEBUG off, where a code must come from the user's own device."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "DEBUG only: print the current TOTP code of a staff user's authenticator."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        if not settings.DEBUG:
            raise CommandError("Refused: codes are printed only on a local run (DEBUG=1).")
        device = TOTPDevice.objects.filter(user__in=get_user_model().objects.filter(username=username),
                                           confirmed=True).first()
        if device is None:
            raise CommandError(f"No authenticator enrolled for {username!r}.")
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
        self.stdout.write(f"{code:0{device.digits}d}\n")
