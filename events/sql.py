"""The event log's vendor-specific SQL: writing events in bulk, the sequencer's lock and its search for events
it has not numbered yet.

PostgreSQL (many concurrent writers): ids come from a sequence and are NOT in commit order, so "events with an
id above the last one numbered" would skip an event that commits late with a lower id. The sequencer instead
remembers the snapshot of its last pass: every event invisible to that snapshot was written by a transaction
that was still running (its ``txid`` is in the snapshot's in-progress list) or had not started (``txid`` at or
above the snapshot's ``xmax``). Only those can still be unnumbered, and an anti-join on ``events_sequenced``
drops the ones already numbered. Nothing is skipped however transactions interleave or how long one runs.

SQLite (the embedded default): one writer at a time holds the database lock from its first write to its
commit, so ids are assigned in commit order and "after the last id numbered" is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson
from django.db import connection

from core.db import prepared_cursor
from events.models import Event

LOCK_NAMESPACE = 0x6576  # first key of the sequencer's advisory lock: "ev"(ents)
EVENT_FIELDS = ["type", "account_id", "market_id", "created_at", "payload"]


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def events_insert(rows: Sequence[tuple]) -> None:
    """Insert events, rows of (type, account id, market id, created_at, payload dict), in one statement."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        with prepared_cursor() as cursor:
            cursor.execute(*events_insert_statement(rows))
    else:
        Event.objects.bulk_create([Event(**dict(zip(EVENT_FIELDS, row))) for row in rows])


def events_insert_statement(rows: Sequence[tuple], *, when: str | None = None) -> tuple[str, list]:
    """The INSERT of ``events_insert`` on PostgreSQL as (text, parameters), for a caller that sends it with other
    writes.

    Two text parameters, whatever the number of rows: the small columns as one JSON document, and the payloads
    (orjson renders them in C; JSON text never contains the ASCII record separator) joined by chr(30). An array
    parameter would be quoted element by element in Python, and a jsonb payload column parsed row by row: each
    cost several times the rest of the insert. ``when``: an SQL condition; the events are inserted only if it
    holds (a caller's statement that writes all or nothing)."""
    return (
        "INSERT INTO events_event (type, account_id, market_id, created_at, payload)"
        " SELECT m.v->>0, (m.v->>1)::bigint, (m.v->>2)::bigint, (m.v->>3)::timestamptz, p.v"
        " FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS m(v, n)"
        " JOIN unnest(string_to_array(%s, chr(30))) WITH ORDINALITY AS p(v, n) USING (n)"
        + (f" WHERE {when}" if when else "") + " ORDER BY n",
        [orjson.dumps([row[:4] for row in rows]).decode(), "\x1e".join(orjson.dumps(row[4]).decode() for row in rows)],
    )


def sequencer_lock() -> bool:
    """Try the sequencer's transaction-scoped lock: one pass at a time, whichever process runs it."""
    if connection.vendor != "postgresql":
        return True  # SQLite serialises writers anyway; a rare duplicate pass fails on the unique event id
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s::int, 0)", [LOCK_NAMESPACE])
        return cursor.fetchone()[0]


DRAFT_TEXT = "CASE WHEN substr(e.payload, 1, 9) = '{\"draft\":' THEN e.payload END"


def unsequenced(state: dict, limit: int) -> tuple[dict, list[tuple[int, str, int | None, int | None, str | None]]]:
    """Events not numbered yet, oldest transaction first: (id, type, account id, market id, the payload if it is
    a draft), at most ``limit``. Returns also the snapshot to remember if this pass numbers them all (see the
    module's docstring)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, type, account_id, market_id, {DRAFT_TEXT} FROM events_event e"
                " WHERE id > (SELECT coalesce(max(event_id), 0) FROM events_sequenced) ORDER BY id LIMIT %s",
                [limit],
            )
            return {}, cursor.fetchall()
    with connection.cursor() as cursor:
        # Taken before the search below (which sees at least as much): every event this snapshot does not see
        # belongs to a transaction at or above its xmax, or in its in-progress list. The pass's own transaction
        # counts as in progress too (it has not committed; only tests number events in the writer's transaction).
        cursor.execute(
            "SELECT pg_snapshot_xmax(s)::text, array(SELECT x::text FROM pg_snapshot_xip(s) AS x"
            " UNION SELECT pg_current_xact_id_if_assigned()::text WHERE pg_current_xact_id_if_assigned() IS NOT NULL)"
            " FROM (SELECT pg_current_snapshot() AS s) AS snap"
        )
        xmax, xip = cursor.fetchone()
        cursor.execute(
            f"SELECT e.id, e.type, e.account_id, e.market_id, {DRAFT_TEXT} FROM events_event e"
            " WHERE (e.txid >= %s::xid8 OR e.txid = ANY(%s::xid8[]))"
            " AND NOT EXISTS (SELECT 1 FROM events_sequenced q WHERE q.event_id = e.id)"
            " ORDER BY e.txid, e.id LIMIT %s",
            [state.get("xmax", "0"), state.get("xip", []), limit],
        )
        return {"xmax": xmax, "xip": sorted(xip)}, cursor.fetchall()


def last_seqs(column: str, ids: Iterable[int]) -> dict[int, int]:
    """The last ``<column>_seq`` given per account (``column="account"``) or market: one index probe each."""
    assert column in ("account", "market")
    ids = sorted(set(ids))
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        source, params = "unnest(%s::bigint[]) AS k(id)", [ids]
    else:
        source, params = "(" + " UNION ALL ".join(["SELECT %s AS id"] * len(ids)) + ") AS k", ids
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT k.id, (SELECT q.{column}_seq FROM events_sequenced q WHERE q.{column}_id = k.id"
            f" ORDER BY q.{column}_seq DESC LIMIT 1) FROM {source}",
            params,
        )
        return {key: last or 0 for key, last in cursor.fetchall()}


def consumer_lock(name: str):
    """A session-scoped lock for a single-instance consumer (the RabbitMQ relay): held by the returned
    connection's session until it closes (a killed process's session ends with it). None: someone holds it.
    On SQLite there is no such lock; one relay per machine is the operator's job."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, hashtext(%s))", [LOCK_NAMESPACE, name])
        return cursor.fetchone()[0]


# Enabled endpoints no dispatcher holds that have numbered events past their position (their own account's, or
# public ones other than ``excluded`` types): what ``events.webhooks._deliverable`` selects, written once.
WEBHOOKS_DELIVERABLE = (
    "SELECT e.id, e.next_attempt_at FROM events_webhookendpoint e"
    " WHERE e.enabled AND e.deleted_at IS NULL AND (e.lease_until IS NULL OR e.lease_until < %s)"
    " AND (EXISTS (SELECT 1 FROM events_sequenced q WHERE q.account_id = e.account_id AND q.seq > e.position)"
    " OR EXISTS (SELECT 1 FROM events_sequenced q WHERE q.account_id IS NULL AND q.seq > e.position"
    " AND q.type <> ALL(%s)))"
    " ORDER BY e.next_attempt_at, e.id"
)


def webhooks_deliverable(now, excluded: Sequence[str]) -> list[tuple]:
    """PostgreSQL: (endpoint id, next attempt time) of every deliverable endpoint, ordered as the dispatcher takes
    them (the next attempt's time, never-failed ones last as PostgreSQL sorts NULL, then id). One prepared
    statement where the ORM compiles two queries on every wake-up of the dispatcher."""
    with prepared_cursor() as cursor:
        cursor.execute(WEBHOOKS_DELIVERABLE, [now, list(excluded)])
        return cursor.fetchall()
