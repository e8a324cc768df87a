"""Event ids: UUIDv7 strings, made on the client so that a retried batch is idempotent."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_last_seq = 0


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit sequence, then 62 random
    bits. Ids made by one process sort in the order they were made, also within a
    millisecond (the sequence counts up; when it overflows the millisecond moves on)."""
    global _last_ms, _last_seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _last_seq = ms, int.from_bytes(os.urandom(2), "big") & 0x3FF
        else:  # same millisecond, or the clock went back: keep counting from the last id
            _last_seq += 1
            if _last_seq > 0xFFF:
                _last_ms, _last_seq = _last_ms + 1, 0
        ms, seq = _last_ms, _last_seq
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    return str(uuid.UUID(int=value))
