from django.db import migrations

from ledger.reference import ASSETS, FIRM_ACCOUNTS


def seed(apps, schema_editor):
    Asset = apps.get_model("ledger", "Asset")
    LedgerAccount = apps.get_model("ledger", "LedgerAccount")
    for code, name, precision, is_fiat in ASSETS:
        Asset.objects.get_or_create(code=code, defaults={"name": name, "precision": precision, "is_fiat": is_fiat})
    for purpose, (code, name, account_type) in FIRM_ACCOUNTS.items():
        LedgerAccount.objects.get_or_create(
            code=code, defaults={"name": name, "type": account_type, "purpose": purpose}
        )


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_ledger_guarantees")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
