"""The operations console: its own app (commands, demo seeding, staff roles) and the admin app configured with
the console site."""

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate


class ConsoleConfig(AppConfig):
    name = "console"


class ConsoleAdminConfig(AdminConfig):
    default_site = "console.site.ConsoleAdminSite"

    def ready(self):
        super().ready()
        from console.roles import staff_groups_on_migrate

        # Sent by the admin app because post_migrate skips apps without models, such as ``console``.
        post_migrate.connect(staff_groups_on_migrate, sender=self, dispatch_uid="console.roles.staff_groups")
        from core.staff_auth import staff_signed_in

        # A staff session's absolute lifetime starts at sign-in (README "Security").
        user_logged_in.connect(staff_signed_in, dispatch_uid="core.staff_auth.staff_signed_in")
