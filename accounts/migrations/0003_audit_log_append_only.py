from django.db import migrations


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE TRIGGER accounts_auditlog_append_only BEFORE UPDATE OR DELETE ON accounts_auditlog "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();"
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER accounts_auditlog_append_only ON accounts_auditlog;")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_initial"), ("ledger", "0002_ledger_guarantees")]
    operations = [migrations.RunPython(forward, backward)]
