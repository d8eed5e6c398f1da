"""Scripted client onboarding: an account (new or existing), a user with a role who is e-mailed a one-time
set-password link, and their first API key, all through the audited services in one transaction.

A read-only key is issued at once and its secret printed once, to this terminal (stdout), never to a log. A key
with the trade or transfer scope is a proposal under dual control: a different staff user approves it with
``manage.py approve_api_key <id> --acting-user <them>``, which prints the secret.

KYC is under dual control: whoever opened the account cannot approve its KYC. Open the account (ops), then a
second person with the approve_kyc permission (compliance, supervisors) approves and activates it, in the console
or by onboarding the user onto the existing account:

    manage.py onboard_client --acting-user ops1 --legal-name "Acme Trading Ltd" \\
        --username acme-ops --email ops@acme.example --role trader --key-scopes read
    manage.py onboard_client --acting-user sup1 --account <id> --kyc-approved --activate \\
        --username acme-trader --email trader@acme.example --role trader --key-scopes read,trade
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.management.commands._onboarding import print_secret, refusals_as_command_errors, staff_user
from accounts.models import AccountKind, ClientAccount, KycStatus, Role, Scope, Tier
from accounts.services import key_needs_dual_control


class Command(BaseCommand):
    help = "Onboard a client: account, user with a role (e-mailed a set-password link), first API key."

    def add_arguments(self, parser):
        parser.add_argument("--acting-user", required=True, help="Your staff username (audited).")
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--account", type=int, help="Add the user to this existing client account (id).")
        where.add_argument("--legal-name", help="Open a new client account with this legal name.")
        parser.add_argument("--kind", choices=AccountKind.values, default=AccountKind.INSTITUTION)
        parser.add_argument("--tier", choices=Tier.values, default=Tier.STANDARD)
        parser.add_argument("--kyc-approved", action="store_true", help="Approve KYC (needs approve_kyc; not by whoever opened the account).")
        parser.add_argument("--activate", action="store_true", help="Activate the account (needs KYC approved).")
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True, help="Where the one-time set-password link goes.")
        parser.add_argument("--role", choices=Role.values, default=Role.TRADER)
        parser.add_argument("--key-scopes", default="",
                            help="Comma-separated scopes of the first API key (read, trade, transfer); none: no key.")
        parser.add_argument("--key-name", default="first key")
        parser.add_argument("--allowed-ip", action="append", default=[], help="IP the key may be used from "
                                                                               "(repeat for more); none: any.")
        parser.add_argument("--base-url", default="",
                            help="Origin of the set-password link, e.g. https://backoffice.example.com "
                                 "(default: PUBLIC_BASE_URL).")

    def handle(self, *args, **options):
        ops = staff_user(options["acting_user"])
        base_url = settings.PUBLIC_BASE_URL or options["base_url"]
        if not base_url:
            raise CommandError("Set PUBLIC_BASE_URL or pass --base-url: the set-password link needs an origin.")
        scopes = [s.strip() for s in options["key_scopes"].split(",") if s.strip()]
        unknown = set(scopes) - set(Scope.values)
        if unknown:
            raise CommandError(f"Unknown scopes {sorted(unknown)}; choose from {Scope.values}.")
        with refusals_as_command_errors(), transaction.atomic():
            account = self._account(ops, options)
            membership, delivery = services.client_user_invite(
                account=account, username=options["username"], email=options["email"], role=options["role"],
                acting_user=ops, base_url=base_url,
            )
            key = secret = key_request = None
            if scopes:
                key_options = {"user": membership.user, "name": options["key_name"], "scopes": scopes,
                               "allowed_ips": options["allowed_ip"], "acting_user": ops}
                if key_needs_dual_control(scopes):
                    key_request = services.api_key_request_propose(**key_options)
                else:
                    key, secret = services.api_key_issue(**key_options)
        # Committed: the e-mail has gone (or failed), and the secret can be shown.
        account.refresh_from_db()
        self.stdout.write(f"Client account #{account.pk} {account.legal_name!r}: {account.status}, "
                          f"KYC {account.kyc_status}.\n")
        self.stdout.write(f"User {membership.user.get_username()!r} ({membership.get_role_display()}). {delivery}\n")
        if secret is not None:
            print_secret(self.stdout, key, secret)
        elif key_request is not None:
            self.stdout.write(
                f"API key request #{key_request.pk} ({', '.join(key_request.scopes)}) proposed. It can move money, "
                "so a different staff user approves it, which prints its secret once:\n"
                f"  manage.py approve_api_key {key_request.pk} --acting-user <their username>\n"
            )

    @staticmethod
    def _account(ops, options) -> ClientAccount:
        if options["account"] is not None:
            account = ClientAccount.objects.filter(pk=options["account"]).first()
            if account is None:
                raise CommandError(f"No client account #{options['account']}.")
        else:
            account = services.client_account_create(legal_name=options["legal_name"], kind=options["kind"],
                                                     tier=options["tier"], acting_user=ops)
        if options["kyc_approved"]:
            account = services.kyc_status_set(account=account, kyc_status=KycStatus.APPROVED, acting_user=ops,
                                              reason="onboard_client")
        if options["activate"]:
            account = services.account_activate(account=account, acting_user=ops, reason="onboard_client")
        return account
