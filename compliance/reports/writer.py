"""Render a report as CSV or JSON, with a first header line that carries the SHA-256 of everything after it.

How the SHA-256 of a streamed report is produced: rows are read from the database once, through server-side
cursors in chunks, encoded, hashed and written to a spooled temporary file (memory up to a few MB, then disk).
When the last row is in, the header line is known (row count, SHA-256, generation time) and the response streams
the header followed by the spooled body. So memory stays bounded, the database is read once, and the hash covers
exactly the bytes that are sent. The price is that the first byte leaves only after the last row was read; large
ranges are meant for the background job (``ReportJob``), which writes the same bytes to a file.

Layout of every output:
- line 1, the header: report name, range, account, format, row count, ``sha256`` and ``generated_at`` (last).
  CSV: ``# report=... sha256=... generated_at=...``; JSON: ``{"header":{...},``.
- everything after the first ``\\n``, the body: identical bytes for the same range on every run.
  CSV: the column line and one line per row. JSON: ``"columns":[...],"rows":[ {...}, ... ]}``.
Verify with ``tail -n +2 report.csv | sha256sum``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from django.utils import timezone

from compliance.errors import Code
from compliance.reports.definitions import REPORTS, Report, Scope
from core.exceptions import DomainError
from ledger.dates import iso_utc

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json; charset=utf-8"}
SPOOL_IN_MEMORY = 4 * 1024 * 1024
BLOCK = 64 * 1024
PROGRESS_EVERY = 5000
# A text cell that a spreadsheet would run as a formula (OWASP's list: = + - @ tab CR) gets a leading quote. A
# plain decimal number ("-12.50", as amounts are written) is left as it is: it is a value, not a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")

_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class CsvEncoder:
    def __init__(self, columns: tuple[str, ...]):
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")
        self._columns = columns

    def header(self, meta: dict) -> str:
        return "# " + " ".join(f"{k}={'' if v is None else v}" for k, v in meta.items()) + "\n"

    def begin(self) -> str:
        return self._line(self._columns)

    def row(self, values: tuple, first: bool) -> str:
        return self._line(tuple(self._cell(v) for v in values))

    def end(self) -> str:
        return ""

    @staticmethod
    def _cell(value) -> str:
        if value is None:
            return ""
        text = str(value)
        if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(text):
            return "'" + text
        return text

    def _line(self, values) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(values)
        return self._buffer.getvalue()


class JsonEncoder:
    def __init__(self, columns: tuple[str, ...]):
        self._columns = columns

    def header(self, meta: dict) -> str:
        return '{"header":' + _json(meta) + ",\n"

    def begin(self) -> str:
        return '"columns":' + _json(list(self._columns)) + ',\n"rows":['

    def row(self, values: tuple, first: bool) -> str:
        return ("\n" if first else ",\n") + _json(dict(zip(self._columns, values)))

    def end(self) -> str:
        return "\n]}\n"


ENCODERS = {"csv": CsvEncoder, "json": JsonEncoder}


def report_get(name: str) -> Report:
    try:
        return REPORTS[name]
    except KeyError:
        raise DomainError(f"Unknown report {name!r}; one of {', '.join(REPORTS)}.", code=Code.UNKNOWN_REPORT,
                          field="report") from None


def format_check(fmt: str) -> str:
    if fmt not in FORMATS:
        raise DomainError(f"Unknown format {fmt!r}; one of {', '.join(FORMATS)}.", code=Code.UNKNOWN_FORMAT,
                          field="format")
    return fmt


@dataclass
class Rendered:
    """A report whose body is complete (spooled) and hashed, ready to be sent or written with its header."""

    report: Report
    scope: Scope
    fmt: str
    rows: int
    sha256: str
    body: BinaryIO = field(repr=False)

    def header(self, generated_at: datetime | None = None) -> bytes:
        meta = {
            "report": self.report.name,
            "from": iso_utc(self.scope.start),
            "to": iso_utc(self.scope.end),
            "account": self.scope.account.pk if self.scope.account else None,
            "format": self.fmt,
            "rows": self.rows,
            "sha256": self.sha256,
            "generated_at": iso_utc(generated_at or timezone.now()),
        }
        return ENCODERS[self.fmt](self.report.columns).header(meta).encode()

    def chunks(self, generated_at: datetime | None = None) -> Iterator[bytes]:
        try:
            yield self.header(generated_at)
            self.body.seek(0)
            while block := self.body.read(BLOCK):
                yield block
        finally:
            self.body.close()

    def write_to(self, out: BinaryIO, generated_at: datetime | None = None) -> None:
        for chunk in self.chunks(generated_at):
            out.write(chunk)


def report_render(name: str, *, scope: Scope, fmt: str,
                  progress: Callable[[int], None] | None = None) -> Rendered:
    """Read the report's rows once, encode and hash them into a spooled body. ``progress(rows)`` is called
    every few thousand rows."""
    report = report_get(name)
    encoder = ENCODERS[format_check(fmt)](report.columns)
    body = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    digest = hashlib.sha256()
    pending: list[str] = [encoder.begin()]
    pending_size = 0
    rows = 0

    def flush():
        data = "".join(pending).encode()
        digest.update(data)
        body.write(data)
        pending.clear()

    try:
        for values in report.rows(scope):
            text = encoder.row(values, first=rows == 0)
            pending.append(text)
            pending_size += len(text)
            rows += 1
            if pending_size >= BLOCK:
                flush()
                pending_size = 0
            if progress and rows % PROGRESS_EVERY == 0:
                progress(rows)
        pending.append(encoder.end())
        flush()
    except BaseException:
        body.close()
        raise
    if progress:
        progress(rows)
    return Rendered(report, scope, fmt, rows, digest.hexdigest(), body)


def report_stream(name: str, *, start: datetime, end: datetime, account=None, fmt: str = "csv",
                  generated_at: datetime | None = None) -> Iterator[bytes]:
    """The bytes of a report, header first, for a ``StreamingHttpResponse``. Checks its arguments at once;
    the database is read when the first chunk is asked for."""
    report_get(name)
    format_check(fmt)
    scope_check(start, end)

    def chunks():
        rendered = report_render(name, scope=Scope(start, end, account), fmt=fmt)
        yield from rendered.chunks(generated_at)

    return chunks()


def scope_check(start: datetime, end: datetime) -> None:
    if timezone.is_naive(start) or timezone.is_naive(end):
        raise DomainError("Report bounds must be timezone-aware.", code=Code.INVALID_RANGE, field="from")
    if start >= end:
        raise DomainError("The start of the range must be before its end.", code=Code.INVALID_RANGE, field="to")


def report_filename(name: str, *, scope: Scope, fmt: str) -> str:
    account = f"_account-{scope.account.pk}" if scope.account else ""
    start, end = (moment.astimezone(UTC) for moment in (scope.start, scope.end))
    return f"{name}_{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}{account}.{fmt}"
