"""PostgreSQL guarantees of the event log.

- ``events_event.txid``: the writing transaction (``pg_current_xact_id()``, 64 bits, never wraps), filled by
  the column default so writers name nothing; indexed for the sequencer, which looks for rows of transactions
  that were still running at its last pass (README "Events: the cursor guarantee").
- Events, their sequence numbers and webhook attempts are append-only: UPDATE and DELETE raise.
"""

from django.db import migrations

FORWARD = """
ALTER TABLE events_event ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_event_txid ON events_event (txid);

CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: it is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER events_event_append_only BEFORE UPDATE OR DELETE ON events_event
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_sequenced_append_only BEFORE UPDATE OR DELETE ON events_sequenced
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_webhookattempt_append_only BEFORE UPDATE OR DELETE ON events_webhookattempt
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
"""

BACKWARD = """
DROP TRIGGER events_webhookattempt_append_only ON events_webhookattempt;
DROP TRIGGER events_sequenced_append_only ON events_sequenced;
DROP TRIGGER events_event_append_only ON events_event;
DROP FUNCTION events_refuse_change();
DROP INDEX events_event_txid;
ALTER TABLE events_event DROP COLUMN txid;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
