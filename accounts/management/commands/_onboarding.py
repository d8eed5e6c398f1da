"""Shared by the onboarding commands: who acts, and how a refused operation reads on a terminal."""

from __future__ import annotations

from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from core.exceptions import DomainError


def staff_user(username: str):
    """The staff user the command acts as: every change is audited under this name."""
    user = get_user_model().objects.filter(username=username, is_active=True, is_staff=True).first()
    if user is None:
        raise CommandError(f"--acting-user {username!r} is not an active staff user.")
    return user


@contextmanager
def refusals_as_command_errors():
    try:
        yield
    except DomainError as exc:
        field = f" ({exc.field})" if exc.field else ""
        raise CommandError(f"{exc.code}{field}: {exc.message}") from None


def print_secret(stdout, key, secret: str) -> None:
    """The one place a secret goes: the terminal running the command, once (never a log)."""
    stdout.write(f"API key {key.prefix} ({', '.join(key.scopes)}) for {key.user.get_username()}. "
                 "The secret is shown this once; the brokerage keeps only its hash:\n")
    stdout.write(f"Authorization: ApiKey {secret}\n")
