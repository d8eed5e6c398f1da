"""Enrol a staff user's authenticator app (TOTP) and show its QR code and key once on this terminal:

    manage.py staff_otp_enrol alice            # a first device
    manage.py staff_otp_enrol alice --replace  # a lost or new phone: the old devices stop working
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from console.staff_otp import staff_totp_enrol, totp_enrolment_text


class Command(BaseCommand):
    help = "Enrol a staff user's authenticator app (TOTP); prints the QR code and key once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--replace", action="store_true", help="Remove the user's other TOTP devices.")

    def handle(self, *args, username, replace, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not user.is_staff:
            raise CommandError(f"No staff user {username!r}.")
        device = staff_totp_enrol(user=user, replace=replace)
        self.stdout.write(totp_enrolment_text(device), ending="")
        self.stdout.write("The key is shown only now; run this again with --replace to enrol another device.\n")
