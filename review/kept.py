"""A queue's annotations and items kept between agreement recomputes (PostgreSQL).

Reading a queue's million annotations and third of a million items costs the database
most of a second, every recompute, though between two recomputes a few dozen rows change.
So each worker process keeps the arrays it read, per queue, with the snapshot they were
read at, and the next recompute reads only the rows written since: the log
`review_row_change`, which triggers on review_annotation and review_item fill with every
row any statement inserts, updates or deletes (migration review 0019), names them.

Why the result is the queue's rows as they are now, exactly:

- Each read runs in a REPEATABLE READ transaction of its own, so the log and the rows are
  read at one snapshot, and `watermark` is that snapshot's xmin: every transaction it
  could not see has an id at or above it.
- The next read takes, from the log, the rows written by transactions with ids at or
  above the watermark (some it did see: reading those again is harmless) and reads them
  again by id: each kept row is replaced by its current version, or dropped where the row
  is gone. A log row commits with the write that made it, or not at all.
- The exception: transactions whose writes the kept rows hold already (`wrote`: a
  recompute's own outcome writes, patched into the very rows it read). Their log rows
  are skipped; anyone else's, before or after, are read again as above. A read made in
  between by another thread gives new array objects, so the patch then does nothing.
- Pruning (`row_changes_prune`) and TRUNCATE raise the log's horizon; arrays with a
  watermark below it are read whole again. So are arrays read another way (`signature`),
  and arrays whose watermark is above the new snapshot's (read in another history of the
  database: transaction ids never go back in one).
- Nothing is kept from a read inside a caller's transaction, which may see its own
  uncommitted rows and roll them back.

A read of the whole queue (GLEANER_AGREEMENT_SHARED_ROWS rows or more) is also left in
the cache, Redis, for the other worker processes (`_share`): a process that keeps nothing
of a queue, such as a worker's first recompute of it, starts from that copy and reads
only the rows written since its watermark, by the rules above, instead of the whole
queue. The copy is a read like any other, made at one snapshot, so those rules make it
exact too. It is only ever a whole read (nothing patched in), and a process that cannot
reach the cache reads the queue whole, as before.

The rows' order is not the database's order; the recompute does not depend on it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection, transaction

from core.background import background_possible

ANNOTATIONS, ITEMS = 1, 2  # the kinds of row review_row_change logs (migration review 0019)

# Where the log names more changed rows than this share of those kept, the queue's rows
# are read whole (one sequential read beats that many reads by id).
REREAD_SHARE = 0.25
# How long a shared copy stays in the cache: past the log's pruning (PRUNE_EVERY, about
# twice over) its watermark is below the horizon and it would be read whole anyway.
SHARED_SECONDS = 2 * 3600

logger = logging.getLogger(__name__)

# What a read gives: each row's id, then columns (one entry per row, in the same order).
type Rows = tuple[np.ndarray, list[np.ndarray]]
# Where a read is kept: the database (host, port, name), the kind of row and the queue.
type Key = tuple[str, str, str, int, int]


@dataclass(frozen=True)
class _Kept:
    signature: Hashable
    watermark: int
    rows: Rows
    # Transactions at or above the watermark whose writes `rows` holds already (`wrote`):
    # the next read does not read their rows again.
    seen: frozenset[int] = frozenset()

    def __len__(self) -> int:
        return len(self.rows[0])


_kept: OrderedDict[Key, _Kept] = OrderedDict()
_lock = threading.Lock()


def kept_rows(
    kind: int, queue_id: int, signature: Hashable, read: Callable[[list[int] | None], Rows]
) -> Rows:
    """The queue's rows of `kind` as `read(None)` gives them now (`read(ids)`: those of
    the rows in `ids` that exist), from the arrays kept from the last read made with the
    same `signature` and the rows written since."""
    # Kept only where another connection would see the same rows: committed ones.
    if not background_possible() or settings.GLEANER_AGREEMENT_KEPT_ROWS <= 0:
        return read(None)
    key = _key(kind, queue_id)
    with _lock:
        kept = _kept.pop(key, None)
    if kept is None:
        kept = _shared(key)  # another process's whole read, if one is in the cache
    whole = False
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8,"
            " pruned_below::text::int8 FROM review_row_change_horizon"
        )
        found = cursor.fetchone()
        if found is None:  # the horizon's row is gone: trust nothing kept, keep nothing
            return read(None)
        watermark, horizon = found
        # A watermark above this snapshot's is from another history of the database (a
        # restore from a backup, say, while a copy waited in the cache): trust nothing.
        if kept is not None and (
            kept.signature != signature or not horizon <= kept.watermark <= watermark
        ):
            kept = None
        if kept is not None:
            cursor.execute(
                "SELECT DISTINCT row_id FROM review_row_change"
                " WHERE queue_id = %s AND kind = %s AND xid >= %s::text::xid8"
                " AND xid::text::int8 <> ALL(%s::int8[])",
                [queue_id, kind, str(kept.watermark), sorted(kept.seen)],
            )
            changed = np.asarray([row[0] for row in cursor.fetchall()], dtype=np.int64)
            if len(changed) > REREAD_SHARE * max(len(kept), 1):
                kept = None
            else:
                rows = (
                    _merge(kept.rows, changed, read(changed.tolist()))
                    if len(changed)
                    else (kept.rows[0], [column.view() for column in kept.rows[1]])
                )
                seen = frozenset(xid for xid in kept.seen if xid >= watermark)
                kept = _Kept(signature, watermark, rows, seen)
        if kept is None:
            kept = _Kept(signature, watermark, read(None))
            whole = True
    _keep(key, kept)
    if whole:
        _share(key, kept)
    return kept.rows


def wrote(
    kind: int,
    queue_id: int,
    first: np.ndarray,
    xids: list[int],
    patch: Callable[[Rows], Rows],
) -> None:
    """The caller, having read the queue's rows of `kind` (`first`: the first column
    `kept_rows` gave it), wrote some of them in the committed transactions `xids` and
    nothing else there: the kept rows become `patch(rows)`, what those writes made of
    them, and the next read does not read again what those transactions wrote. Rows others
    wrote meanwhile are read again as ever (the log names them under their own
    transactions). Does nothing unless the kept rows are still the ones the caller read:
    each read gives new array objects (views where nothing changed), so a read made since,
    by another thread, leaves the caller's writes to be read again from the log."""
    key = _key(kind, queue_id)
    with _lock:
        kept = _kept.get(key)
        if kept is None or not kept.rows[1] or kept.rows[1][0] is not first:
            return
        _kept[key] = _Kept(
            kept.signature, kept.watermark, patch(kept.rows), kept.seen | frozenset(xids)
        )


def _key(kind: int, queue_id: int) -> Key:
    """Where the queue's rows of `kind`, read through this connection, are kept."""
    params = connection.settings_dict
    return (str(params["HOST"]), str(params["PORT"]), str(params["NAME"]), kind, queue_id)


# The code that reads and keeps the rows (this module and the reads of review/gate.py): a
# copy left by other code, before a deploy, may hold other columns, so each version of the
# code has its own copies.
_CODE = hashlib.sha256(
    b"".join(Path(__file__).with_name(name).read_bytes() for name in ("kept.py", "gate.py"))
).hexdigest()[:16]


def _shared_key(key: Key) -> str:
    return ":".join(map(str, ("kept", _CODE, *key)))


def _cache_shared() -> bool:
    """Whether reads are shared at all: GLEANER_AGREEMENT_SHARED_ROWS above 0 and a cache
    the other processes see (Redis, not a process's memory)."""
    return settings.GLEANER_AGREEMENT_SHARED_ROWS > 0 and not isinstance(
        caches["default"], LocMemCache | DummyCache
    )


@dataclass(frozen=True)
class _Shared:
    """A whole read as the cache holds it: each integer column in the smallest type that
    holds its values (half the bytes of a queue's answers to send and receive), with the
    type to give it back."""

    signature: Hashable
    watermark: int
    columns: tuple[tuple[np.ndarray, np.dtype], ...]  # the ids first

    @classmethod
    def of(cls, kept: _Kept) -> _Shared:
        ids, columns = kept.rows
        return cls(kept.signature, kept.watermark, tuple(map(_packed, [ids, *columns])))

    def kept(self) -> _Kept:
        # copy=False: a column the cache holds in its own type is the unpickled array itself
        ids, *columns = (column.astype(dtype, copy=False) for column, dtype in self.columns)
        return _Kept(self.signature, self.watermark, (ids, columns))


def _packed(column: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    """`column` in the smallest integer type that holds its values (as it is if it is not
    of integers), and its own type."""
    if column.dtype.kind in "iu" and len(column):
        low, high = int(column.min()), int(column.max())
        # Signed where a value is below zero: the type of the lowest and of -high - 1 (the
        # lowest a type holding `high` holds), so 3 with -1 is int8, not int16.
        narrow = (
            np.min_scalar_type(high)
            if low >= 0
            else np.result_type(np.min_scalar_type(low), np.min_scalar_type(-high - 1))
        )
        if narrow.itemsize < column.dtype.itemsize:
            return column.astype(narrow), column.dtype
    return column, column.dtype


def _shared(key: Key) -> _Kept | None:
    """The whole read another process left in the cache for `key`, if any. A cache that
    does not answer (or answers with something else) is no copy: the caller reads."""
    if not _cache_shared():
        return None
    try:
        found = cache.get(_shared_key(key))
    except Exception:  # any cache or connection error: Redis is an aid here, not a need
        logger.warning("Kept rows of %s not read from the cache", key, exc_info=True)
        return None
    return found.kept() if isinstance(found, _Shared) else None


def _share(key: Key, kept: _Kept) -> None:
    """Leave the whole read `kept` in the cache for the other processes, if it is large
    enough to be worth it (GLEANER_AGREEMENT_SHARED_ROWS; 0: never)."""
    if not _cache_shared() or len(kept) < settings.GLEANER_AGREEMENT_SHARED_ROWS:
        return
    try:
        cache.set(_shared_key(key), _Shared.of(kept), SHARED_SECONDS)
    except Exception:  # as in _shared
        logger.warning("Kept rows of %s not left in the cache", key, exc_info=True)


def unshare(queue_id: int) -> None:
    """Drop the queue's copies from the cache (reads through this connection's
    database): each process that keeps nothing of it then reads it whole."""
    cache.delete_many([_shared_key(_key(kind, queue_id)) for kind in (ANNOTATIONS, ITEMS)])


def _merge(kept: Rows, changed: np.ndarray, fresh: Rows) -> Rows:
    """`kept` without the `changed` rows, then their current versions (`fresh`)."""
    stays = ~np.isin(kept[0], changed)
    return (
        np.concatenate([kept[0][stays], fresh[0]]),
        [np.concatenate([old[stays], new]) for old, new in zip(kept[1], fresh[1], strict=True)],
    )


def _keep(key: Key, kept: _Kept) -> None:
    """Keep `kept`, forgetting the reads used longest ago beyond the process's allowance."""
    allowance = settings.GLEANER_AGREEMENT_KEPT_ROWS
    if len(kept) > allowance:
        return
    with _lock:
        _kept[key] = kept
        total = sum(len(k) for k in _kept.values())
        while total > allowance:
            _, gone = _kept.popitem(last=False)
            total -= len(gone)


def forget() -> None:
    """Drop every kept read: each queue's next recompute reads its rows whole."""
    with _lock:
        _kept.clear()


def kept_queues(kind: int) -> list[int]:
    """The queues whose rows of `kind` this process keeps (oldest use first)."""
    with _lock:
        return [key[4] for key in _kept if key[3] == kind]


# How long each pruning keeps the log: arrays read since the pruning before stay good.
PRUNE_EVERY = "1 hour"


def row_changes_prune() -> int:
    """Drop the log's rows older than the last pruning's snapshot and raise its horizon to
    that snapshot, at most once per PRUNE_EVERY (PostgreSQL; elsewhere nothing is logged).
    Returns how many log rows went."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE review_row_change_horizon SET pruned_below = greatest(next, pruned_below),"
            " next = pg_snapshot_xmin(pg_current_snapshot()), pruned_at = now()"
            " WHERE pruned_at <= now() - %s::interval RETURNING pruned_below",
            [PRUNE_EVERY],
        )
        row = cursor.fetchone()
        if row is None:
            return 0
        cursor.execute("DELETE FROM review_row_change WHERE xid < %s", [row[0]])
        return cursor.rowcount
