"""The second person of dual control for an API key that can move money: approve it (the key is created and
its secret printed once, to this terminal, never to a log) or reject it.

    manage.py approve_api_key 7 --acting-user supervisor2
    manage.py approve_api_key 7 --acting-user supervisor2 --reject "client asked for read only"
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.management.commands._onboarding import print_secret, refusals_as_command_errors, staff_user
from accounts.models import ApiKeyRequest


class Command(BaseCommand):
    help = "Approve (or --reject) an API key request proposed by another staff user."

    def add_arguments(self, parser):
        parser.add_argument("request_id", type=int)
        parser.add_argument("--acting-user", required=True, help="Your staff username; not the proposer's.")
        parser.add_argument("--reject", metavar="REASON", help="Reject instead, for this reason.")

    def handle(self, *args, request_id, acting_user, reject, **options):
        staff = staff_user(acting_user)
        key_request = ApiKeyRequest.objects.filter(pk=request_id).first()
        if key_request is None:
            raise CommandError(f"No API key request #{request_id}.")
        with refusals_as_command_errors():
            if reject is not None:
                services.api_key_request_reject(request=key_request, acting_user=staff, reason=reject)
                self.stdout.write(f"API key request #{request_id} rejected.\n")
                return
            key_request, secret = services.api_key_request_approve(request=key_request, acting_user=staff)
        if secret is None:
            raise CommandError(f"API key request #{request_id} was already approved; its secret was shown once "
                               "then and cannot be shown again (revoke the key and issue a new one if it is lost).")
        print_secret(self.stdout, key_request.key, secret)
