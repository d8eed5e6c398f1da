"""Database-enforced ledger guarantees (PostgreSQL only; the embedded SQLite default relies on Python checks).

- Every journal entry balances per asset: a deferred constraint trigger checks at commit, so postings may be
  inserted in any order inside a transaction but an unbalanced entry can never be committed.
- A journal entry has at least two postings: checked at commit as well.
- Entries and postings are append-only: UPDATE and DELETE raise.
"""

from django.db import migrations

FORWARD = """
-- enable_seqscan off: on a young table without statistics the planner scans ledger_posting sequentially for
-- each checked posting (O(n) per row); these checks must always take the entry_id index.
CREATE FUNCTION ledger_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off AS $$
DECLARE
    bad record;
BEGIN
    -- No LIMIT here: it lets the planner prefer an index in asset_id order filtered by entry_id, a scan of
    -- the whole table per checked posting.
    SELECT s.asset_id, s.total INTO bad FROM (
        SELECT p.asset_id, sum(p.amount) AS total
          FROM ledger_posting p WHERE p.entry_id = NEW.entry_id GROUP BY p.asset_id
    ) s WHERE s.total <> 0;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entry % does not balance for asset %: postings sum to %',
            NEW.entry_id, bad.asset_id, bad.total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION ledger_check_entry_has_postings() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off AS $$
BEGIN
    IF (SELECT count(*) FROM ledger_posting p WHERE p.entry_id = NEW.id) < 2 THEN
        RAISE EXCEPTION 'journal entry % has fewer than two postings', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledger_posting_balanced
    AFTER INSERT ON ledger_posting DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();

CREATE CONSTRAINT TRIGGER ledger_entry_has_postings
    AFTER INSERT ON ledger_journalentry DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_has_postings();

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: it is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER ledger_posting_append_only BEFORE UPDATE OR DELETE ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_journalentry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""

BACKWARD = """
DROP TRIGGER ledger_entry_append_only ON ledger_journalentry;
DROP TRIGGER ledger_posting_append_only ON ledger_posting;
DROP FUNCTION ledger_refuse_change();
DROP TRIGGER ledger_entry_has_postings ON ledger_journalentry;
DROP TRIGGER ledger_posting_balanced ON ledger_posting;
DROP FUNCTION ledger_check_entry_has_postings();
DROP FUNCTION ledger_check_entry_balanced();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
