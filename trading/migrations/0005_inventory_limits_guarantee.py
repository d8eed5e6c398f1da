"""The firm's exposure limits, guaranteed by PostgreSQL (the embedded SQLite default relies on the Python checks
made before posting).

A trigger on the firm's balance rows (``enforce_floor`` off: client rows never fire it) refuses an update of a
``firm:inventory`` balance that takes the position beyond its ``trading_inventorylimit`` further than it was, or
moves an asset without limits. It runs on the locked row, in the statement that changes it, so concurrent trades
cannot both squeeze under a limit, and it costs the trade no round trip. The message starts with
``inventory_limit:`` so the services can show it as a refusal (``trading.inventory.exposure_guarded``).
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION trading_inventory_within_limits() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lim record;
BEGIN
    IF NEW.amount = OLD.amount
       OR NEW.account_id IS DISTINCT FROM (SELECT id FROM ledger_ledgeraccount WHERE code = 'firm:inventory') THEN
        RETURN NEW;
    END IF;
    SELECT max_long, max_short INTO lim FROM trading_inventorylimit WHERE asset_id = NEW.asset_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'inventory_limit: the firm has no exposure limit in %', NEW.asset_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.amount > lim.max_long AND NEW.amount > OLD.amount THEN
        RAISE EXCEPTION 'inventory_limit: the firm''s % position would be %, beyond its long limit %',
            NEW.asset_id, trim_scale(NEW.amount), trim_scale(lim.max_long) USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.amount < -lim.max_short AND NEW.amount < OLD.amount THEN
        RAISE EXCEPTION 'inventory_limit: the firm''s % position would be %, beyond its short limit %',
            NEW.asset_id, trim_scale(NEW.amount), trim_scale(lim.max_short) USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER trading_inventory_within_limits BEFORE UPDATE OF amount ON ledger_balance
    FOR EACH ROW WHEN (NOT OLD.enforce_floor) EXECUTE FUNCTION trading_inventory_within_limits();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS trading_inventory_within_limits ON ledger_balance;
DROP FUNCTION IF EXISTS trading_inventory_within_limits();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("trading", "0004_quotes_inventory_conversions"), ("ledger", "0006_principal_inventory_account")]
    operations = [migrations.RunPython(forward, backward)]
