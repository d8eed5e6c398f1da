"""The admin app configured with the operations console site and the staff groups it relies on."""

from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate


class ConsoleAdminConfig(AdminConfig):
    default_site = "brokerage.admin_site.ConsoleAdminSite"

    def ready(self):
        super().ready()
        from accounts.roles import staff_groups_on_migrate

        post_migrate.connect(staff_groups_on_migrate, sender=self, dispatch_uid="accounts.roles.staff_groups")
