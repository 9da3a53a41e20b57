"""Reading the event streams of a sharded layout as one, in id order, losing none.

Each shard has its own stream, and each stream makes its own entry ids from its server's
clock, so two shards may hold entries of the same millisecond, and a shard's next entry may
carry an id no later than one another shard already gave the reader. A reader that went on
after the newest id it was given would skip it. So each shard is read by a script
(`READ_SCRIPT`) that also returns its server's clock at that moment: any entry written to
that stream later has an id of that millisecond or more. Entries are handed out only below
the earliest of those clocks (the watermark); later ones are held until a read finds every
shard's clock past them. An entry waits for the millisecond it was written in to pass,
and, on a cluster whose nodes' clocks disagree, for the slowest clock to reach it: late,
never lost.

Within one millisecond, entries of different shards have no order of their own: they come
by shard.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from functools import partial
from typing import Any

from producer.contract.keys import Keys
from producer.contract.scripts import NOW
from producer.redis.failover import Tries
from producer.redis.scripts import run_script
from producer.redis.typed import Redis

Entry = tuple[bytes, dict[bytes, bytes]]

# KEYS[1] a shard's event stream; ARGV[1] the id to read after, ARGV[2] the most entries.
# Returns the server's clock (ms) and the entries after ARGV[1], read at that moment.
READ_SCRIPT = (
    NOW
    + """
local now = now_ms()
return {now, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
"""
)
READ_SHA = hashlib.sha1(READ_SCRIPT.encode()).hexdigest()
# KEYS[1] a shard's event stream (to reach its node); returns that node's clock (ms).
CLOCK_SCRIPT = NOW + "\nreturn now_ms()\n"
CLOCK_SHA = hashlib.sha1(CLOCK_SCRIPT.encode()).hexdigest()
LAST_SEQ = 2**64 - 1  # a stream id's sequence part is a 64-bit unsigned number
HOLD_S = 0.002  # how long a reader waits for held entries' millisecond to pass
SHARD_POLL_S = 0.1  # how often the shards are read while nothing comes


def entry_id(raw: bytes | str) -> tuple[int, int]:
    """A stream id as (ms, seq); "{ms}" alone is (ms, 0)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


async def read_merged(
    redis: Redis, shards: Sequence[Keys], after: str, count: int, block_ms: int | None, tries: Tries
) -> list[Entry]:
    """Every shard's entries after ``after`` that no later write can precede, merged in id
    order (at most ``count`` of a shard's per read). None yet: waits up to ``block_ms``
    (None: returns at once) polling every SHARD_POLL_S; entries held below the watermark
    are waited for, even when not blocking."""
    while True:
        ready, held = await _read_once(redis, shards, after, count, tries)
        if ready:
            return ready
        if held:
            await asyncio.sleep(HOLD_S)
            continue
        if block_ms:
            await asyncio.sleep(min(block_ms / 1000, SHARD_POLL_S))
        return []


async def start_below_clocks(redis: Redis, shards: Sequence[Keys], tries: Tries) -> str:
    """Where "from now on" starts on a sharded layout: after every id below the earliest of
    the shards' clocks. Any entry written from now on has an id at or past it, whatever its
    shard (the newest id of one shard would be past entries another shard writes later in
    the same millisecond, or on a node whose clock is behind). Entries of the current
    millisecond written just before come too."""
    clocks = []
    for keys in shards:
        read = partial(run_script, redis, CLOCK_SHA, CLOCK_SCRIPT, [keys.events], [])
        clocks.append(int(await tries.read(read)))
    below = min(clocks) - 1
    return f"{below}-{LAST_SEQ}" if below >= 0 else "0-0"


async def _read_once(
    redis: Redis, shards: Sequence[Keys], after: str, count: int, tries: Tries
) -> tuple[list[Entry], bool]:
    """The entries safe to hand out, in id order, and whether any were held back."""
    merged: list[Entry] = []
    watermark: int | None = None
    cut: tuple[int, int] | None = None  # a full read's last id: nothing after it is sure
    for keys in shards:
        read = partial(run_script, redis, READ_SHA, READ_SCRIPT, [keys.events], [after, count])
        now, raw = await tries.read(read)
        entries = [_entry(e) for e in raw]
        merged += entries
        watermark = int(now) if watermark is None else min(watermark, int(now))
        if len(entries) == count:
            last = entry_id(entries[-1][0])
            cut = last if cut is None else min(cut, last)
    merged.sort(key=lambda entry: entry_id(entry[0]))  # stable: same ids come by shard
    ready = [
        e
        for e in merged
        if entry_id(e[0])[0] < (watermark or 0) and (cut is None or entry_id(e[0]) <= cut)
    ]
    return ready, len(ready) < len(merged)


def _entry(raw: Any) -> Entry:
    """An XRANGE entry from a script's reply: [id, [field, value, ...]]."""
    entry, flat = raw
    return entry, {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
