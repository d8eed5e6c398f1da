"""Row-level helpers: ``row_locked`` for state transitions, bulk writes for the hot paths (the matcher's batch),
one statement each whatever the number of rows, and ``models_select`` for their fixed reads.

On PostgreSQL every column travels as one array parameter and ``unnest`` turns the arrays back into rows: the
statement text stays the same size for any batch (no thousands of placeholders to build, send and parse), and
no model instance is built per row. The arrays bind on the server (``prepared_cursor``): no quoting of every
value in Python, and the statement, whose text depends only on the model and the columns, gets prepared.
Elsewhere (SQLite, the embedded default) Django's bulk methods do it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache

import orjson
from django.db import connection, transaction
from django.db.models import Model


@contextmanager
def prepared_cursor() -> Iterator:
    """PostgreSQL: a cursor that binds parameters on the server, so that psycopg prepares a statement once this
    connection has run it a few times (``prepare_threshold``) and PostgreSQL no longer parses and plans it. For
    the fixed statements of the hot paths (order placement, API-key authentication), where planning cost
    PostgreSQL about as much as running them; Django's other queries bind on the client. Query logging and error
    wrapping stay Django's. Other databases: Django's usual cursor."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = connection._prepare_cursor(ServerBindingCursor(connection.connection))
    try:
        yield cursor
    finally:
        cursor.close()


_coalescing_from: ContextVar[int | None] = ContextVar("coalescing_from", default=None)


@contextmanager
def on_commit_coalesced() -> Iterator[None]:
    """Inside it, ``on_commit_once`` registers one callback per key for all the writes of the block (a batch of
    orders wakes its market and the event sequencer once, not once per order); outside, every call registers."""
    token = _coalescing_from.set(len(transaction.get_connection().run_on_commit))
    try:
        yield
    finally:
        _coalescing_from.reset(token)


def on_commit_once(key: Hashable, func: Callable[[], None]) -> None:
    """``transaction.on_commit(func, robust=True)``, unless inside ``on_commit_coalesced`` a callback of the same
    ``key`` registered in that block still waits for the commit (one dropped with a rolled-back savepoint no
    longer counts: Django removes it from the list)."""
    start = _coalescing_from.get()
    if start is not None:
        pending = transaction.get_connection().run_on_commit[start:]
        if any(getattr(waiting, "once_key", None) == key for _, waiting, _ in pending):
            return
    func.once_key = key
    transaction.on_commit(func, robust=True)


def row_locked(obj: Model) -> Model:
    """Re-read ``obj`` under a row lock: every transition decides on the current state, not a stale copy."""
    return type(obj).objects.select_for_update(no_key=True).get(pk=obj.pk)


@cache
def _columns(model: type[Model], fields: tuple[str, ...]) -> list[tuple[str, str]]:
    """(column, array type) per field name, e.g. ("entry_id", "bigint[]"). Cached: models don't change."""
    out = []
    for name in fields:
        field = model._meta.get_field(name)
        out.append((field.column, f"{field.db_type(connection)}[]"))  # a foreign key's type is its target's
    return out


def rows_insert(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence], *,
                returning: Sequence[str] = ()) -> list[tuple]:
    """Insert ``rows`` (one value per field, foreign keys as ids) and return the ``returning`` columns of the
    inserted rows. Ids are assigned in the order of ``rows``; callers that need to pair results with rows
    should return a unique column too (PostgreSQL does not promise the order of RETURNING rows)."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objs = model._default_manager.bulk_create(
            [model(**{_attname(model, f): value for f, value in zip(fields, row)}) for row in rows]
        )
        return [tuple(getattr(obj, _attname(model, r)) for r in returning) for obj in objs]
    columns = _columns(model, tuple(fields))
    names = ", ".join(f'"{column}"' for column, _ in columns)
    arrays = ", ".join(f"%s::{array_type}" for _, array_type in columns)
    sql = (f'INSERT INTO "{model._meta.db_table}" ({names}) '
           f"SELECT {', '.join(f'c{i}' for i in range(len(columns)))} "
           f"FROM unnest({arrays}) WITH ORDINALITY AS t({', '.join(f'c{i}' for i in range(len(columns)))}, n) "
           "ORDER BY n")
    if returning:
        sql += " RETURNING " + ", ".join(f'"{_column(model, r)}"' for r in returning)
    with prepared_cursor() as cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows)])
        return [tuple(row) for row in cursor.fetchall()] if returning else []


def rows_update(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence], *, key: str = "id") -> int:
    """Set ``fields`` of the rows whose ``key`` is the first value of each row (``(key, *values)``), in one
    statement. Returns the number of rows updated."""
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        objs = []
        for row in rows:
            obj = model(**{_attname(model, key): row[0]})
            for name, value in zip(fields, row[1:]):
                setattr(obj, _attname(model, name), value)
            objs.append(obj)
        return model._default_manager.bulk_update(objs, list(fields))
    columns = _columns(model, (key, *fields))
    aliases = [f"c{i}" for i in range(len(columns))]
    assignments = ", ".join(f'"{column}" = v.{alias}' for (column, _), alias in zip(columns[1:], aliases[1:]))
    arrays = ", ".join(f"%s::{array_type}" for _, array_type in columns)
    sql = (f'UPDATE "{model._meta.db_table}" AS m SET {assignments} '
           f"FROM unnest({arrays}) AS v({', '.join(aliases)}) WHERE m.\"{columns[0][0]}\" = v.c0")
    with prepared_cursor() as cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows)])
        return cursor.rowcount


@cache
def _insert_text(model: type[Model], with_pk: bool) -> tuple[str, tuple]:
    fields = tuple(f for f in model._meta.concrete_fields if with_pk or f is not model._meta.auto_field)
    table, columns = model._meta.db_table, ", ".join(f'"{field.column}"' for field in fields)
    return (f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM jsonb_populate_record(NULL::"{table}", %s)',
            fields)


def insert_statement(obj: Model, *, when: str | None = None) -> tuple[str, list]:
    """The INSERT of one model instance as (text, parameters), for a caller that sends several writes in one
    statement (PostgreSQL). The row travels as one JSON parameter that PostgreSQL casts column by column
    (decimals as text, exact): a short text with one parameter, where one parameter per column would be quoted
    one by one in Python and make the statement too long for psycopg's cache of parsed queries. Each value is
    the field's ``pre_save`` (``auto_now_add`` and the like applied), as Django's ``save`` takes it; what JSON
    has no type for (decimals, IP addresses, UUIDs) goes as its text, which PostgreSQL casts. Without a primary
    key the database assigns it (and the instance does not learn it). The instance is then marked as saved. The
    statement text is cached per model. ``when``: an SQL condition; the row is inserted only if it holds (a
    caller's statement that writes all or nothing)."""
    text, fields = _insert_text(type(obj), obj.pk is not None)
    if when:
        text += f" WHERE {when}"
    row = {field.column: field.pre_save(obj, True) for field in fields}
    obj._state.adding, obj._state.db = False, connection.alias
    return text, [orjson.dumps(row, default=str).decode()]


@dataclass(frozen=True)
class JoinedSelect:
    """A ``SELECT`` of every column of some models joined in one statement (``joined_select``), and how to turn
    each row back into instances (``joined_instances``)."""

    text: str  # up to the WHERE clause
    slices: tuple  # per model: (model, attribute names, index of its primary key, start, end of its columns)
    converters: tuple  # per column: the ORM's converters of the value read, as (converter, column) pairs


def joined_select(tables: Sequence[tuple[type[Model], str, str]]) -> JoinedSelect:
    """``tables``: (model, alias, source), the source being the FROM or JOIN clause with ``{table}`` for the
    model's table, e.g. ``(Hold, "r", "LEFT JOIN {table} r ON r.id = m.hold_id")``. Build it once (cache it):
    it is what an ORM queryset compiles again on every run."""
    qn = connection.ops.quote_name
    columns, converters, sources, slices = [], [], [], []
    for model, alias, source in tables:
        fields = model._meta.concrete_fields
        slices.append((model, [f.attname for f in fields], fields.index(model._meta.pk), len(columns),
                       len(columns) + len(fields)))
        columns += [f"{alias}.{qn(f.column)}" for f in fields]
        # What the ORM applies to these columns on reading (e.g. JSONField decodes its text, SQLite's decimals).
        cols = [f.get_col(alias) for f in fields]
        converters += [tuple((convert, col) for convert in connection.ops.get_db_converters(col)
                             + col.get_db_converters(connection)) for col in cols]
        sources.append(source.format(table=qn(model._meta.db_table)))
    return JoinedSelect(f"SELECT {', '.join(columns)} FROM {' '.join(sources)}", tuple(slices), tuple(converters))


def joined_instances(select: JoinedSelect, row: Sequence) -> list[Model | None]:
    """One instance per model of ``select`` from a row it read (None where a LEFT JOIN found no row)."""
    row = [value if value is None or not converters else _converted(value, converters)
           for value, converters in zip(row, select.converters)]
    return [model.from_db(connection.alias, names, row[start:end]) if row[start + pk_index] is not None else None
            for model, names, pk_index, start, end in select.slices]


def _converted(value, converters):
    for convert, col in converters:
        value = convert(value, col, connection)
    return value


@cache
def _model_select(model: type[Model], related: str | None) -> JoinedSelect:
    tables = [(model, "m", "{table} m")]
    if related is not None:
        field = model._meta.get_field(related)
        target = field.related_model
        qn = connection.ops.quote_name
        tables.append((target, "r", f"LEFT JOIN {{table}} r ON r.{qn(target._meta.pk.column)} = m.{qn(field.column)}"))
    return joined_select(tables)


def models_select(model: type[Model], where: str, params: Sequence, *, related: str | None = None) -> list[Model]:
    """Instances of ``model`` for the rows that ``where`` (SQL after ``WHERE``, the table aliased ``m``; it may go
    on with ORDER BY and LIMIT) selects, with the foreign key ``related`` loaded as ``select_related`` would
    (joined as ``r``). For the fixed reads of a hot path: the statement text is built once per model and bound
    on the server (``prepared_cursor``), where an ORM queryset is compiled again on every run."""
    select = _model_select(model, related)
    with prepared_cursor() as cursor:
        cursor.execute(f"{select.text} WHERE {where}", params)
        rows = cursor.fetchall()
    out = []
    for row in rows:
        obj, *joined = joined_instances(select, row)
        if related is not None:
            model._meta.get_field(related).set_cached_value(obj, joined[0])
        out.append(obj)
    return out


def models_by_id(model: type[Model], ids: Iterable[int]) -> dict[int, Model]:
    """``in_bulk`` for a hot path: the instances of ``model`` with these primary keys, by key, through
    ``models_select`` (the statement built once, bound on the server)."""
    ids = list(set(ids))
    if not ids:
        return {}
    pk = connection.ops.quote_name(model._meta.pk.column)
    if connection.vendor == "postgresql":
        where, params = f"m.{pk} = ANY(%s)", [ids]
    else:
        where, params = f"m.{pk} IN ({', '.join(['%s'] * len(ids))})", ids
    return {obj.pk: obj for obj in models_select(model, where, params)}


def _attname(model: type[Model], name: str) -> str:
    return model._meta.get_field(name).attname


def _column(model: type[Model], name: str) -> str:
    return model._meta.get_field(name).column


def vendor_is_postgresql(conn=None) -> bool:
    return (conn or connection).vendor == "postgresql"


def session_lock_try(conn, namespace: int, key: int) -> bool:
    """Try PostgreSQL's session-level advisory lock on ``conn`` (a connection of its own: the lock lasts until
    it is released or the connection ends, e.g. its process dies)."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)::text", [namespace, key])
        return cursor.fetchone()[0] == "true"
