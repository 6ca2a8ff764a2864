"""Records as columns, and the index of their versions that every query is answered from.

A record's versions are its events in time order: version k is the record after its first k+1
events. The `VersionIndex` lists every version of every record sorted by (timestamp, record id),
with the timestamp of the record's *next* version beside it. "Visible at t" is then `ts <= t <
next_ts`, and a window of last-update time is a contiguous slice found by binary search, so a page
out of millions of versions costs one slice comparison and a few array lookups, whatever the window.

Versions added while serving (the `concurrent_update` fault) are kept per record as extra "touch"
events and merged into that record's event list; they are replayed whenever the index is rebuilt, so
the world's ground truth always agrees with what was served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saas_simulator.generate import Chunk
from saas_simulator.timeutil import NEVER

ID_FACTOR = 2**31  # key = ts * ID_FACTOR + id orders versions by (timestamp, id)
TOUCH = 100  # event kind of an added version; real kinds are column numbers 0..K-1


class SystemTable:
    """All records of one system so far: record columns, line columns and sorted events."""

    def __init__(self, event_columns: tuple[str, ...]):
        self.event_columns = event_columns
        self.records: dict[str, np.ndarray] = {}
        self.lines: dict[str, np.ndarray] = {}
        self.line_offsets = np.zeros(1, dtype=np.int64)
        self.event_ts = np.zeros((0, len(event_columns)), dtype=np.int64)
        self.event_kind = np.zeros((0, len(event_columns)), dtype=np.int8)

    def __len__(self) -> int:
        return len(self.event_ts)

    def extended(self, chunks: list[Chunk]) -> SystemTable:
        """A new table with `chunks` appended (the old one stays valid for readers holding it).

        Only the new records' events are sorted; existing columns are copied once, O(records).
        """
        table = SystemTable(self.event_columns)
        base = len(self)
        new = {key: np.concatenate([c.records[key] for c in chunks]) for key in chunks[0].records}
        table.records = _appended(self.records, new)
        if chunks[0].lines:
            line_parts = []
            for chunk in chunks:
                line_parts.append({**chunk.lines, "owner": chunk.lines["owner"] + base})
                base += len(chunk)
            new_lines = {key: np.concatenate([p[key] for p in line_parts]) for key in line_parts[0]}
            table.lines = _appended(self.lines, new_lines)
            counts = np.bincount(new_lines["owner"] - len(self), minlength=len(new["created"]))
            first = self.line_offsets[-1]
            table.line_offsets = np.concatenate([self.line_offsets, first + np.cumsum(counts)])
        raw = np.stack([new[c] for c in self.event_columns], axis=1).astype(np.int64)
        order = np.argsort(raw, axis=1, kind="stable")
        table.event_ts = np.concatenate([self.event_ts, np.take_along_axis(raw, order, axis=1)])
        table.event_kind = np.concatenate([self.event_kind, order.astype(np.int8)])
        return table

    def line_slice(self, record: int) -> slice:
        return slice(int(self.line_offsets[record]), int(self.line_offsets[record + 1]))


@dataclass(frozen=True)
class VersionIndex:
    """Every version sorted by (ts, id), with its record, version number and next ts."""

    ts: np.ndarray
    key: np.ndarray
    record: np.ndarray
    version: np.ndarray
    next_ts: np.ndarray

    @classmethod
    def build(
        cls, table: SystemTable, touches: dict[int, list[int]], first_record: int = 0
    ) -> VersionIndex:
        """The index of records `first_record` onwards (all, by default)."""
        event_ts = table.event_ts[first_record:]
        n = len(event_ts)
        padded = np.concatenate([event_ts, np.full((n, 1), NEVER, dtype=np.int64)], axis=1)
        valid = event_ts < NEVER
        touches = {r: added for r, added in touches.items() if r >= first_record}
        if touches:
            valid[[r - first_record for r in touches]] = False
        rows, cols = np.nonzero(valid)
        ts = event_ts[rows, cols]
        next_ts = padded[rows, cols + 1]
        parts = [(ts, rows.astype(np.int64) + first_record, cols.astype(np.int32), next_ts)]
        for record, added in touches.items():
            parts.append(_record_entries(record, merged_events(table, record, added)))
        ts, record, version, next_ts = (np.concatenate([p[i] for p in parts]) for i in range(4))
        key = ts * ID_FACTOR + record + 1
        order = np.lexsort((version, key))
        return cls(ts[order], key[order], record[order], version[order], next_ts[order])

    def merged(self, other: VersionIndex) -> VersionIndex:
        """Both indexes' versions in one (their records must differ): an O(versions) merge."""
        where = np.searchsorted(self.key, other.key, side="right")
        return VersionIndex(
            ts=np.insert(self.ts, where, other.ts),
            key=np.insert(self.key, where, other.key),
            record=np.insert(self.record, where, other.record),
            version=np.insert(self.version, where, other.version),
            next_ts=np.insert(self.next_ts, where, other.next_ts),
        )

    def with_record_replaced(
        self, table: SystemTable, record: int, added: list[int]
    ) -> VersionIndex:
        """This index with one record's versions recomputed (after a touch), in O(versions)."""
        keep = self.record != record
        ts, rec, ver, nxt = _record_entries(record, merged_events(table, record, added))
        key = ts * ID_FACTOR + record + 1
        base_key = self.key[keep]
        where = np.searchsorted(base_key, key, side="right")
        return VersionIndex(
            ts=np.insert(self.ts[keep], where, ts),
            key=np.insert(base_key, where, key),
            record=np.insert(self.record[keep], where, rec),
            version=np.insert(self.version[keep], where, ver),
            next_ts=np.insert(self.next_ts[keep], where, nxt),
        )

    def visible(
        self, now: float, start: float | None = None, end: float | None = None
    ) -> np.ndarray:
        """Positions of versions visible at `now` with ts in [start, end), in (ts, id) order."""
        now_s = int(np.floor(now))
        low = (
            0 if start is None else int(np.searchsorted(self.ts, int(np.ceil(start)), side="left"))
        )
        upper = now_s + 1 if end is None else min(int(np.ceil(end)), now_s + 1)
        high = int(np.searchsorted(self.ts, upper, side="left"))
        if high <= low:
            return np.empty(0, dtype=np.int64)
        return low + np.flatnonzero(self.next_ts[low:high] > now_s)

    def visible_after_key(
        self, now: float, after_key: int, until: float | None = None
    ) -> np.ndarray:
        """Visible versions after a (ts, id) key, up to `until`: a cursor stream's tail."""
        now_s = int(np.floor(now))
        last = now_s if until is None else min(now_s, int(np.floor(until)))
        low = int(np.searchsorted(self.key, after_key, side="right"))
        high = int(np.searchsorted(self.ts, last + 1, side="left"))
        if high <= low:
            return np.empty(0, dtype=np.int64)
        return low + np.flatnonzero(self.next_ts[low:high] > now_s)

    def visible_position_of(self, now: float, record: int) -> int | None:
        """Where a record's visible version sits in the index, or None if it does not exist yet."""
        now_s = int(np.floor(now))
        candidates = np.flatnonzero(
            (self.record == record) & (self.ts <= now_s) & (self.next_ts > now_s)
        )
        return int(candidates[0]) if len(candidates) else None


def merged_events(table: SystemTable, record: int, added: list[int]) -> list[tuple[int, int]]:
    """A record's (ts, kind) events, touches merged in after base events of their second."""
    row_ts = table.event_ts[record]
    row_kind = table.event_kind[record]
    events = [
        (int(t), j, int(kd))
        for j, (t, kd) in enumerate(zip(row_ts, row_kind, strict=True))
        if t < NEVER
    ]
    events += [(int(t), 1000 + i, TOUCH) for i, t in enumerate(added)]
    events.sort()
    return [(t, kind) for t, _, kind in events]


def _record_entries(record: int, events: list[tuple[int, int]]):
    ts = np.array([t for t, _ in events], dtype=np.int64)
    next_ts = np.append(ts[1:], NEVER).astype(np.int64)
    return ts, np.full(len(ts), record, dtype=np.int64), np.arange(len(ts), dtype=np.int32), next_ts


def _appended(old: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([old[key], new[key]]) for key in new} if old else new


@dataclass(frozen=True)
class SystemView:
    """A consistent snapshot of one system for one request: table, index and added touches."""

    system: str
    table: SystemTable
    index: VersionIndex
    touches: dict[int, list[int]]

    def events(self, record: int, version: int) -> list[tuple[int, int]]:
        """The (ts, kind) events that make up `version` of `record`."""
        added = self.touches.get(record)
        if added:
            return merged_events(self.table, record, added)[: version + 1]
        row_ts = self.table.event_ts[record]
        row_kind = self.table.event_kind[record]
        return [(int(row_ts[j]), int(row_kind[j])) for j in range(version + 1)]
