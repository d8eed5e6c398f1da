from django.db import migrations, models

from ledger.reference import FIRM_ACCOUNTS


def seed(apps, schema_editor):
    """The firm's principal inventory account, as 0003 seeded the other firm accounts."""
    LedgerAccount = apps.get_model("ledger", "LedgerAccount")
    code, name, account_type = FIRM_ACCOUNTS["inventory"]
    LedgerAccount.objects.get_or_create(code=code, defaults={"name": name, "type": account_type, "purpose": "inventory"})


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_drop_redundant_indexes")]
    operations = [
        migrations.AlterField(
            model_name="ledgeraccount",
            name="purpose",
            field=models.CharField(
                choices=[("client", "Client funds"), ("custody", "Custody / omnibus"), ("fees", "Fee revenue"),
                         ("settlement", "Settlement"), ("suspense", "Suspense"), ("equity", "Firm equity"),
                         ("expense", "Firm expense"), ("inventory", "Principal inventory")],
                max_length=12,
            ),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
