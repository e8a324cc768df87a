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
  watermark below it are read whole again. So are arrays read another way (`signature`).
- Nothing is kept from a read inside a caller's transaction, which may see its own
  uncommitted rows and roll them back.

The rows' order is not the database's order; the recompute does not depend on it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from core.background import background_possible

ANNOTATIONS, ITEMS = 1, 2  # the kinds of row review_row_change logs (migration review 0019)

# Where the log names more changed rows than this share of those kept, the queue's rows
# are read whole (one sequential read beats that many reads by id).
REREAD_SHARE = 0.25

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
        if kept is not None and (kept.signature != signature or kept.watermark < horizon):
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
    _keep(key, kept)
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
