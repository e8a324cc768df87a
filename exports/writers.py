"""Streaming file writers: rows go to disk as they come, hashed on the way."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from exports.formats import META_FIELDS

ROW_GROUP = 10_000


class JsonlWriter:
    """One JSON object a line; with `sidecar`, the meta fields go to a second file instead
    (formats whose consumer wants bare rows)."""

    def __init__(self, path: Path, *, sidecar: Path | None = None) -> None:
        self.path, self.sidecar = path, sidecar
        self._file = path.open("wb")
        self._meta = sidecar.open("wb") if sidecar else None
        self._hash = hashlib.sha256()
        self._meta_hash = hashlib.sha256()
        self.rows = 0
        # Chunks are written and hashed on a thread of their own (both let go of the GIL)
        # while the next chunk is built; one at a time, so memory stays flat.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-writer")
        self._pending: Future[None] | None = None

    def write(self, row: dict[str, Any]) -> None:
        self._wait()
        if self._meta is not None:
            meta = {key: row.pop(key) for key in META_FIELDS}
            line = _line(meta)
            self._meta.write(line)
            self._meta_hash.update(line)
        line = _line(row)
        self._file.write(line)
        self._hash.update(line)
        self.rows += 1

    def write_lines(self, data: bytes, rows: int, meta: bytes = b"") -> None:
        """`rows` lines already encoded (exports/chunks.py), each ending in a newline; with
        a sidecar, `meta` holds its lines, one for each line. Written once the chunk
        before is (its error, if any, raised here or by `close`)."""
        self._wait()
        self._pending = self._thread.submit(self._write_chunk, data, meta)
        self.rows += rows

    def _write_chunk(self, data: bytes, meta: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        if self._meta is not None:
            self._meta.write(meta)
            self._meta_hash.update(meta)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> dict[str, str]:
        self._wait()
        self._thread.shutdown()
        self._file.close()
        digests = {self.path.name: self._hash.hexdigest()}
        if self._meta is not None and self.sidecar is not None:  # both or neither
            self._meta.close()
            digests[self.sidecar.name] = self._meta_hash.hexdigest()
        return digests


class ParquetWriter:
    """Parquet in row groups of ROW_GROUP rows, so memory stays flat with size."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")
        # Buffered by column, as Table.from_pylist would split the rows.
        self._columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        self._buffered = 0
        self.rows = 0
        # Row groups are encoded, compressed and written on a thread of their own (Arrow
        # lets go of the GIL) while the next rows are built; one at a time, as JsonlWriter.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-parquet")
        self._pending: Future[None] | None = None

    def write(self, row: dict[str, Any]) -> None:
        for name, column in self._columns.items():
            column.append(row.get(name))
        self._added(1)

    def write_columns(self, columns: dict[str, list[Any]], rows: int) -> None:
        """`rows` rows given as lists by field name (exports/chunks.py)."""
        for name, column in self._columns.items():
            column += columns[name]
        self._added(rows)

    def _added(self, rows: int) -> None:
        self.rows += rows
        self._buffered += rows
        while self._buffered >= ROW_GROUP:
            self._flush(ROW_GROUP)

    def _flush(self, rows: int) -> None:
        """Write the first `rows` buffered rows as one row group."""
        if not rows:
            return
        arrays = []
        for field in self.schema:
            column = self._columns[field.name]
            arrays.append(pa.array(column[:rows], type=field.type))
            del column[:rows]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        self._wait()
        self._pending = self._thread.submit(self._writer.write_table, table)
        self._buffered -= rows

    def _wait(self) -> None:
        """The row group in flight written (its error, if any, raised here)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> dict[str, str]:
        self._flush(self._buffered)
        self._wait()
        self._thread.shutdown()
        self._writer.close()
        return {self.path.name: file_sha256(self.path)}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
