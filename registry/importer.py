"""Bulk import: CSV or JSONL lines in, batches of ``(handle, values)`` out.

Parsing is pure (numbered text lines in, :class:`Row` or :class:`Rejected`
out) and the commit loop only batches and hands each batch to a register
function (the CLI passes the operations layer's), so both are testable
without the CLI and a 100k-line file is never held in memory: rows stream
from the file into one batch at a time.

Formats (one record per line, UTF-8, blank lines ignored):

* CSV: a header line naming the columns, ``handle,url[,TYPE...]``. The
  ``handle`` column is required; ``url`` (any case) becomes the URL value at
  index 1; every other column is a value type (``EMAIL``, ``DESC``, ...)
  whose values get indexes 2, 3, ... in column order. Empty cells add no
  value. Fields may be quoted (``"a,b"``, ``""`` for a quote) but may not
  span lines.
* JSONL: one object per line, either ``{"handle": H, "url": U}`` or
  ``{"handle": H, "values": [Handle.Net JSON values]}`` (the format
  ``idnode export`` writes).
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, BinaryIO, Callable, Iterable, Iterator, Sequence

import orjson

from protocol.codes import RC
from protocol.identifier import InvalidHandle, parse_handle
from protocol.jsoncodec import JsonValueError, values_from_json
from protocol.values import HandleValue, validate_values

from .errors import RegistryError
from .model import ItemResult

# Commits one batch: ``await register(items, overwrite)``, one result per item.
Register = Callable[[Sequence[tuple[str, Sequence[HandleValue]]], bool], Awaitable[list[ItemResult]]]

FORMATS = ("csv", "jsonl")
URL_INDEX = 1
_JSONL_KEYS = {"handle", "url", "values", "responseCode"}   # responseCode: GET output pasted as-is


class ImportFormatError(ValueError):
    """The file as a whole cannot be read (bad CSV header, unknown format)."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    handle: str
    values: tuple[HandleValue, ...]


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    handle: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.handle or '-'}: {self.reason}"


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What one committed batch did; rejections include parse failures seen
    since the previous batch."""
    number: int
    first_line: int
    last_line: int
    imported: int
    skipped: int
    rejected: tuple[Rejected, ...]


class LineSource:
    """Numbered lines of a binary file, decoded one at a time.

    Yields ``(line_number, text)`` with the line ending removed, or
    ``(line_number, None)`` for a line that is not UTF-8, so one bad line is
    rejected on its own. ``bytes_read`` feeds the progress bar.
    """

    __slots__ = ("_fh", "bytes_read")

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.bytes_read = 0

    def __iter__(self) -> Iterator[tuple[int, str | None]]:
        for number, raw in enumerate(self._fh, 1):
            self.bytes_read += len(raw)
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                yield number, None


def guess_format(name: str) -> str:
    """``csv`` or ``jsonl`` from a file name; ImportFormatError if unclear."""
    lower = name.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise ImportFormatError(f"cannot tell the format of {name!r}; give --format csv or --format jsonl")


def parse(fmt: str, lines: Iterable[tuple[int, str | None]]) -> Iterator[Row | Rejected]:
    if fmt == "csv":
        return parse_csv(lines)
    if fmt == "jsonl":
        return parse_jsonl(lines)
    raise ImportFormatError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _csv_fields(text: str) -> list[str]:
    """Split one CSV line; csv.Error on an unterminated quote or stray text."""
    return next(csv.reader((text,), strict=True), [])


def _csv_columns(number: int, text: str | None) -> tuple[int, list[tuple[int, int, str]]]:
    """From the header: the handle column and ``(column, index, type)`` of each value."""
    if text is None:
        raise ImportFormatError(f"line {number}: CSV header is not valid UTF-8")
    try:
        names = [n.strip() for n in _csv_fields(text)]
    except csv.Error as exc:
        raise ImportFormatError(f"line {number}: malformed CSV header: {exc}") from None
    lowered = [n.lower() for n in names]
    if lowered.count("handle") != 1 or any(not n for n in names):
        raise ImportFormatError(
            f"line {number}: CSV header must be 'handle,url[,TYPE...]' "
            f"(one 'handle' column, no empty names), got {text!r}")
    if lowered.count("url") > 1:
        raise ImportFormatError(f"line {number}: CSV header names 'url' twice")
    handle_col = lowered.index("handle")
    columns: list[tuple[int, int, str]] = []
    next_index = URL_INDEX + 1
    for col, name in enumerate(names):
        if col == handle_col:
            continue
        if name.lower() == "url":
            columns.append((col, URL_INDEX, "URL"))
        else:
            columns.append((col, next_index, name))
            next_index += 1
    return handle_col, columns


def parse_csv(lines: Iterable[tuple[int, str | None]]) -> Iterator[Row | Rejected]:
    """Rows of a CSV file whose first non-blank line is the header."""
    it = iter(lines)
    header = next(((n, t) for n, t in it if t is None or t.strip()), None)
    if header is None:
        raise ImportFormatError("the file is empty (expected a CSV header 'handle,url[,TYPE...]')")
    handle_col, columns = _csv_columns(*header)
    width = len(columns) + 1
    for number, text in it:
        if text is None:
            yield Rejected(number, "", "line is not valid UTF-8")
            continue
        if not text.strip():
            continue
        try:
            cells = _csv_fields(text)
        except csv.Error as exc:
            yield Rejected(number, "", f"malformed CSV: {exc}")
            continue
        handle = cells[handle_col].strip() if handle_col < len(cells) else ""
        if len(cells) != width:
            yield Rejected(number, handle, f"expected {width} columns, got {len(cells)}")
            continue
        values = tuple(HandleValue(index, type_, cells[col].strip().encode("utf-8"))
                       for col, index, type_ in columns if cells[col].strip())
        yield _row(number, handle, values)


def parse_jsonl(lines: Iterable[tuple[int, str | None]]) -> Iterator[Row | Rejected]:
    """Rows of a JSON-lines file: ``{"handle", "url"}`` or ``{"handle", "values"}``."""
    for number, text in lines:
        if text is None:
            yield Rejected(number, "", "line is not valid UTF-8")
            continue
        if not text.strip():
            continue
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield Rejected(number, "", f"invalid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            yield Rejected(number, "", "line is not a JSON object")
            continue
        handle = obj.get("handle")
        if not isinstance(handle, str):
            yield Rejected(number, "", "missing or non-text 'handle'")
            continue
        unknown = set(obj) - _JSONL_KEYS
        if unknown:
            yield Rejected(number, handle, f"unknown keys: {', '.join(sorted(unknown))}")
            continue
        if ("url" in obj) == ("values" in obj):
            yield Rejected(number, handle, "give exactly one of 'url' or 'values'")
            continue
        if "url" in obj:
            url = obj["url"]
            if not isinstance(url, str) or not url.strip():
                yield Rejected(number, handle, "'url' must be non-empty text")
                continue
            values: tuple[HandleValue, ...] = (HandleValue(URL_INDEX, "URL", url.strip().encode("utf-8")),)
        elif not isinstance(obj["values"], list):
            yield Rejected(number, handle, "'values' must be a list")
            continue
        else:
            try:
                values = tuple(values_from_json(obj["values"]))
            except JsonValueError as exc:
                yield Rejected(number, handle, f"bad value: {exc}")
                continue
        yield _row(number, handle, values)


def _row(number: int, handle: str, values: tuple[HandleValue, ...]) -> Row | Rejected:
    """Validate the identifier and the values of one record."""
    try:
        parsed = parse_handle(handle)
    except InvalidHandle as exc:
        return Rejected(number, handle, str(exc))
    if not values:
        return Rejected(number, parsed.text, "no values")
    try:
        validate_values(values)
    except ValueError as exc:
        return Rejected(number, parsed.text, str(exc))
    return Row(number, parsed.text, tuple(sorted(values, key=lambda v: v.index)))


def _batches(entries: Iterable[Row | Rejected], size: int) -> Iterator[tuple[list[Row], list[Rejected]]]:
    """Groups of up to ``size`` rows, with the rejections met along the way."""
    rows: list[Row] = []
    rejected: list[Rejected] = []
    for entry in entries:
        if isinstance(entry, Rejected):
            rejected.append(entry)
            continue
        rows.append(entry)
        if len(rows) >= size:
            yield rows, rejected
            rows, rejected = [], []
    if rows or rejected:
        yield rows, rejected


async def import_rows(register: Register, entries: Iterable[Row | Rejected], *, batch_size: int,
                      overwrite: bool) -> AsyncIterator[BatchOutcome]:
    """Commit rows batch by batch through ``register`` (the operations layer's
    batch registration: one transaction each on the embedded store), yielding
    after each commit.

    In create mode (``overwrite=False``) an identifier that already exists,
    in the store or earlier in the file, is counted as skipped, so re-running
    an interrupted import finishes it; with ``overwrite`` the last row wins.
    Either way the outcome does not depend on where the batches fall.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for number, (rows, rejected) in enumerate(_batches(entries, batch_size), 1):
        imported = skipped = 0
        if rows:
            results = await register([(r.handle, r.values) for r in rows], overwrite)
            if len(results) != len(rows):
                raise RegistryError(f"store answered {len(results)} results for {len(rows)} items")
            for row, result in zip(rows, results):
                if result.code == RC.SUCCESS:
                    imported += 1
                elif result.code == RC.HANDLE_ALREADY_EXISTS and not overwrite:
                    skipped += 1
                else:
                    rejected.append(Rejected(row.line, row.handle, result.message or _rc_name(result.code)))
        lines = [r.line for r in rows] + [r.line for r in rejected]
        rejected.sort(key=lambda r: r.line)
        yield BatchOutcome(number, min(lines), max(lines), imported, skipped, tuple(rejected))


def _rc_name(code: int) -> str:
    try:
        return RC(code).name.lower().replace("_", " ")
    except ValueError:
        return f"response code {code}"
