"""State-only half of moving ``AuditLog`` to the ``audit`` app (see ``audit/migrations/0001_initial.py``)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0004_funding_reason_and_guarantees"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditLog")],
            database_operations=[],
        ),
    ]
