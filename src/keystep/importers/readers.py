"""Reading a file in batches of raw rows: CSV, Parquet or newline-delimited JSON (optionally gzipped).

A raw row is a dict from source column to value (text for CSV; typed values for Parquet and NDJSON),
or a `Malformed` record when the row itself could not be read (wrong number of CSV fields, a line that
is not a JSON object). Rows are numbered from 1: for CSV the n-th record after the header, for NDJSON
the line number; blank lines are skipped. Batches also report progress: bytes of the file read so far
(CSV, NDJSON) or rows read (Parquet), out of `FileSource.size`.

CSV is read with Python's `csv` module rather than Arrow's reader so that every value stays text (ids
like `007` keep their zeros, no type guessed from the first block fails on a later one) and a row with
the wrong number of fields is rejected with its exact row number instead of ending the import.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

_DELIMITERS = (",", ";", "\t", "|")


class FileFormat(Enum):
    CSV = "csv"
    PARQUET = "parquet"
    NDJSON = "ndjson"


_SUFFIXES: dict[str, FileFormat] = {
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.CSV,
    ".txt": FileFormat.CSV,
    ".parquet": FileFormat.PARQUET,
    ".pq": FileFormat.PARQUET,
    ".ndjson": FileFormat.NDJSON,
    ".jsonl": FileFormat.NDJSON,
    ".json": FileFormat.NDJSON,
}


class SourceError(ValueError):
    """The file cannot be read at all (missing, unknown format, no header, not UTF-8 ...)."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """A row that could not be read into columns."""

    reason: str
    raw: str


RawRow = dict[str, Any] | Malformed


@dataclass(frozen=True, slots=True)
class RawBatch:
    rows: list[RawRow]
    numbers: list[int]
    """The 1-based number of each row as a user sees it (record number; line number for NDJSON)."""
    position: int
    """Progress after this batch, in the unit of `FileSource.size`."""


@dataclass(frozen=True, slots=True)
class FileSource:
    """A file ready to be read: its format, its columns when known up front, its size for progress."""

    path: Path
    format: FileFormat
    columns: tuple[str, ...] | None
    """The column names (CSV header, Parquet schema); None for NDJSON, whose keys vary per line."""
    size: int
    text_values: bool
    """Every value is text (CSV): numbers in `properties` are recognized from their text."""
    delimiter: str = ","

    def batches(self, batch_size: int = 50_000) -> Iterator[RawBatch]:
        """The rows in batches of at most `batch_size`, read lazily so memory stays flat."""
        if self.format is FileFormat.PARQUET:
            return _parquet_batches(self.path, batch_size)
        if self.format is FileFormat.CSV:
            return _csv_batches(self, batch_size)
        return _ndjson_batches(self.path, batch_size)


def detect_format(path: Path) -> FileFormat:
    """The format from the file name (`.csv`, `.tsv`, `.parquet`, `.ndjson`, `.jsonl`, `.json`, + `.gz`)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise SourceError(f"{path}: cannot tell the format from the name; pass --format csv|parquet|ndjson")


def open_source(path: Path, file_format: FileFormat | None = None) -> FileSource:
    """Check the file and read what is needed before importing: CSV header, Parquet schema."""
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    fmt = file_format or detect_format(path)
    if fmt is FileFormat.PARQUET:
        try:
            schema, rows = pq.read_schema(path), pq.read_metadata(path).num_rows
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None
        return FileSource(path, fmt, tuple(schema.names), rows, False)
    size = path.stat().st_size
    if fmt is FileFormat.CSV:
        header, delimiter = _csv_header(path)
        return FileSource(path, fmt, header, size, True, delimiter)
    _check_ndjson(path)
    return FileSource(path, fmt, None, size, False)


# -- CSV ------------------------------------------------------------------------------------------


def _csv_header(path: Path) -> tuple[tuple[str, ...], str]:
    with _open_text(path) as (text, _raw):
        try:
            first = text.readline()
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if not first.strip():
        raise SourceError(f"{path}: empty, or no header line (a CSV file starts with its column names)")
    delimiter = ("\t" if ".tsv" in [s.lower() for s in path.suffixes]
                 else max(_DELIMITERS, key=lambda d: (first.count(d), d == ",")))
    header = next(csv.reader([first], delimiter=delimiter))
    names = tuple(name.strip() or f"column_{i + 1}" for i, name in enumerate(header))
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise SourceError(f"{path}: the header repeats column names: {', '.join(duplicated)}")
    return names, delimiter


def _csv_batches(source: FileSource, batch_size: int) -> Iterator[RawBatch]:
    columns = source.columns or ()
    width = len(columns)
    with _open_text(source.path) as (text, raw):
        reader = csv.reader(text, delimiter=source.delimiter)
        rows: list[RawRow] = []
        numbers: list[int] = []
        number = 0
        try:
            next(reader, None)  # the header, already read by open_source
            for record in reader:
                if not record:
                    continue
                number += 1
                if len(record) == width:
                    rows.append(dict(zip(columns, record, strict=True)))
                else:
                    rows.append(Malformed(f"expected {width} fields, found {len(record)}",
                                          source.delimiter.join(record)))
                numbers.append(number)
                if len(rows) >= batch_size:
                    yield RawBatch(rows, numbers, raw.tell())
                    rows, numbers = [], []
        except UnicodeDecodeError as exc:
            raise SourceError(f"{source.path}: not UTF-8 text after row {number} ({exc.reason})") from None
        except csv.Error as exc:
            raise SourceError(f"{source.path}: unreadable CSV at line {reader.line_num}: {exc}") from None
        if rows:
            yield RawBatch(rows, numbers, raw.tell())


# -- NDJSON ---------------------------------------------------------------------------------------


def _check_ndjson(path: Path) -> None:
    with _open_text(path) as (text, _raw):
        try:
            for line in text:
                if line.strip():
                    if line.lstrip().startswith("["):
                        raise SourceError(f"{path}: a JSON array; keystep reads newline-delimited JSON "
                                          "(one object per line)")
                    return
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _ndjson_batches(path: Path, batch_size: int) -> Iterator[RawBatch]:
    with _open_text(path) as (text, raw):
        rows: list[RawRow] = []
        numbers: list[int] = []
        number = 0
        try:
            for number, line in enumerate(text, start=1):
                if not line.strip():
                    continue
                rows.append(_json_object(line))
                numbers.append(number)
                if len(rows) >= batch_size:
                    yield RawBatch(rows, numbers, raw.tell())
                    rows, numbers = [], []
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path}: not UTF-8 text after line {number} ({exc.reason})") from None
        if rows:
            yield RawBatch(rows, numbers, raw.tell())


def _json_object(line: str) -> RawRow:
    text = line.rstrip("\r\n")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Malformed(f"not valid JSON: {exc.msg} (column {exc.colno})", text)
    if not isinstance(value, dict):
        return Malformed(f"not a JSON object but {type(value).__name__}", text)
    return value


# -- Parquet --------------------------------------------------------------------------------------


def _parquet_batches(path: Path, batch_size: int) -> Iterator[RawBatch]:
    done = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        rows: list[RawRow] = list(_python_values(batch).to_pylist())
        numbers = list(range(done + 1, done + len(rows) + 1))
        done += len(rows)
        if rows:
            yield RawBatch(rows, numbers, done)


def _python_values(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Nanosecond timestamps as microseconds: Python's datetime holds no more (the rest is truncated)."""
    arrays = []
    for column in batch.columns:
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.unit == "ns":
            column = column.cast(pa.timestamp("us", tz=kind.tz), safe=False)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


# -- files ----------------------------------------------------------------------------------------


@contextmanager
def _open_text(path: Path) -> Iterator[tuple[io.TextIOWrapper, IO[bytes]]]:
    """A (possibly gzipped) UTF-8 file as text, and the binary file under it to report bytes read."""
    with open(path, "rb") as raw:
        binary = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix.lower() == ".gz" else raw
        with io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as text:
            yield text, raw
