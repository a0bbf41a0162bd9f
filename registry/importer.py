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

import asyncio
import codecs
import contextlib
import csv
import gc
from dataclasses import dataclass, field
from operator import attrgetter
from typing import AsyncIterator, Awaitable, BinaryIO, Callable, Iterable, Iterator, Sequence

import orjson

from protocol.codes import RC
from protocol.identifier import Handle, InvalidHandle, parse_handle
from protocol.jsoncodec import JsonValueError, values_from_json
from protocol.quickinit import quick_init
from protocol.values import HandleValue, validate_values

from .errors import RegistryError
from .model import ItemResult

# Commits one batch: ``await register(items, overwrite)``, one result per item. An item's
# identifier is the text of the row or, when the parser gave one, its parsed Handle.
Register = Callable[[Sequence[tuple["str | Handle", Sequence[HandleValue]]], bool], Awaitable[list[ItemResult]]]

FORMATS = ("csv", "jsonl")
URL_INDEX = 1
_JSONL_KEYS = {"handle", "url", "values", "responseCode"}   # responseCode: GET output pasted as-is


class ImportFormatError(ValueError):
    """The file as a whole cannot be read (bad CSV header, unknown format)."""


@quick_init
@dataclass(frozen=True, slots=True)
class Row:
    line: int
    handle: str
    values: tuple[HandleValue, ...]
    parsed: Handle | None = field(default=None, compare=False, repr=False)   # ``handle`` parsed, once

    @property
    def item(self) -> tuple["str | Handle", tuple[HandleValue, ...]]:
        """What the register function is given for this row."""
        return (self.handle if self.parsed is None else self.parsed), self.values


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
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, None
            else:
                yield number, text.rstrip("\r\n")


@contextlib.contextmanager
def bulk_gc(young: int = 100_000) -> Iterator[None]:
    """For a process that imports: the objects alive now (modules, settings)
    are set aside from garbage collection, and the youngest generation is
    collected every ``young`` allocations instead of every 700. A batch makes
    a few hundred thousand objects that live as long as the batch: collected
    at the usual pace, the collector would walk them again and again."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


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


class _CsvLines:
    """Splits CSV lines one at a time as :func:`_csv_fields` does (tested
    equal), quicker: a line with no quote, line break or NUL, and no longer
    than a field may be, is what the csv module makes of it split at the
    commas, so it is split so; any other goes to one csv reader kept for the
    whole file, fed one line at a time (its state starts afresh on each line,
    so a line may not continue the one before)."""

    __slots__ = ("_line", "_reader")

    def __init__(self) -> None:
        self._line: str | None = None
        self._reader = csv.reader(self, strict=True)

    def __iter__(self) -> "_CsvLines":
        return self

    def __next__(self) -> str:
        line, self._line = self._line, None
        if line is None:
            raise StopIteration
        return line

    def fields(self, text: str) -> list[str]:
        if text and len(text) <= csv.field_size_limit() and '"' not in text and "\r" not in text \
                and "\n" not in text and "\0" not in text:
            return text.split(",")
        self._line = text
        try:
            return next(self._reader, [])
        finally:
            self._line = None


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


def parse_csv(lines: Iterable[tuple[int, str | None]], *,
              _split: Callable[[str], list[str]] | None = None) -> Iterator[Row | Rejected]:
    """Rows of a CSV file whose first non-blank line is the header (``_split``:
    how a line is split, for the tests to give the plain :func:`_csv_fields`)."""
    it = iter(lines)
    header = next(((n, t) for n, t in it if t is None or t.strip()), None)
    if header is None:
        raise ImportFormatError("the file is empty (expected a CSV header 'handle,url[,TYPE...]')")
    handle_col, columns = _csv_columns(*header)
    width = len(columns) + 1
    columns.sort(key=lambda c: c[1])          # values come out in index order
    # validate_values looks at every field but the data, which is all a row
    # changes: when the columns' values pass, every row's values (some of them,
    # with other data) do.
    try:
        validate_values([HandleValue(index, type_) for _, index, type_ in columns])
        checked = True
    except ValueError:
        checked = False
    split = _split or _CsvLines().fields
    for number, text in it:
        if text is None:
            yield Rejected(number, "", "line is not valid UTF-8")
            continue
        if not text.strip():
            continue
        try:
            cells = split(text)
        except csv.Error as exc:
            yield Rejected(number, "", f"malformed CSV: {exc}")
            continue
        handle = cells[handle_col].strip() if handle_col < len(cells) else ""
        if len(cells) != width:
            yield Rejected(number, handle, f"expected {width} columns, got {len(cells)}")
            continue
        values = []
        for col, index, type_ in columns:
            cell = cells[col].strip()
            if cell:
                values.append(HandleValue(index, type_, cell.encode("utf-8")))
        yield _row(number, handle, tuple(values), ordered=True, checked=checked)


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
                values = tuple(values_from_json(obj["values"]))     # validated (validate_values)
            except JsonValueError as exc:
                yield Rejected(number, handle, f"bad value: {exc}")
                continue
            yield _row(number, handle, values, checked=True)
            continue
        yield _row(number, handle, values)


_by_index = attrgetter("index")


def _row(number: int, handle: str, values: tuple[HandleValue, ...], *, ordered: bool = False,
         checked: bool = False) -> Row | Rejected:
    """Validate the identifier and the values of one record (``ordered``: they
    are already in index order; ``checked``: validate_values has passed them)."""
    try:
        parsed = parse_handle(handle)
    except InvalidHandle as exc:
        return Rejected(number, handle, str(exc))
    if not values:
        return Rejected(number, parsed.text, "no values")
    if not checked:
        try:
            validate_values(values)
        except ValueError as exc:
            return Rejected(number, parsed.text, str(exc))
    return Row(number, parsed.text, values if ordered else tuple(sorted(values, key=_by_index)), parsed)


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

    While a batch commits (on the store's writer thread) the next one is
    parsed; a batch is handed to ``register`` only once the one before it is
    committed, so batches are written one at a time and in order.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batches = _batches(entries, batch_size)
    number, committing = 0, None
    while True:
        try:
            batch = next(batches, None)       # parsed while the batch before commits
        except BaseException:
            if committing is not None:        # that batch is written: report it before the error
                yield await _committed(*committing)
            raise
        if committing is not None:
            yield await _committed(*committing)
        if batch is None:
            return
        number += 1
        rows, rejected = batch
        task = asyncio.ensure_future(register([r.item for r in rows], overwrite)) if rows else None
        committing = (number, rows, rejected, task, overwrite)
        await asyncio.sleep(0)                # let it reach the writer before parsing goes on


async def _committed(number: int, rows: list[Row], rejected: list[Rejected], task: "asyncio.Future | None",
                     overwrite: bool) -> BatchOutcome:
    imported = skipped = 0
    if task is not None:
        results = await task
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
    return BatchOutcome(number, min(lines), max(lines), imported, skipped, tuple(rejected))


def _rc_name(code: int) -> str:
    try:
        return RC(code).name.lower().replace("_", " ")
    except ValueError:
        return f"response code {code}"
