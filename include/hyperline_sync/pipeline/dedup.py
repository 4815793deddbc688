"""messageId dedup: within a chunk, across chunks and objects of a run, and across partitions.

The first-received copy wins. When filtering day D, ids already seen are those the earlier days
`[D - window_days, D)` committed, those their units not done yet hold (`id_index`: an earlier day
synced at the same time, or failed and waiting for its retry, still sends them itself), those of
the objects of D already committed (unless resending), and those of the events passed earlier in
this run. Later days are deliberately not consulted: if an object lands in day D's folder after
D+1 was synced (Segment writes late into a day folder), D's copy is sent anyway and overwrites
D+1's at Hyperline (an upsert on `record.id`), so the first-received copy still wins in the end.

Ids of each object are stored (and kept across re-syncs of the object) once every event of it has
Hyperline's answer, in
`<state_dir>/<pipeline>/ids/<YYYY-MM-DD>/<sha1(key)>.parquet` (written to a temporary file and
renamed, so a crash never leaves half a file): the messageId strings and their 64-bit hashes. The ids
a unit in progress has delivered so far are in `<sha1(key)>.acked` next to it (`state.checkpoint`) and
are read as well: they are at Hyperline.

Why 64-bit hashes: membership is tested on a sorted `uint64` array with `np.searchsorted`, so a
7-day window of ~1M ids/day costs ~56 MB instead of ~1 GB as a Python set of strings. The risk is
a false "duplicate": with n ids in the window and m new ids per day it is about m*n / 2**64, i.e.
~4e-7 per day for 1M x 8M, or one lost event in ~6,000 years of daily runs at that volume. That is
far below the duplicate residue Segment itself leaves, so 128-bit hashes (twice the memory) would
buy nothing measurable. Hashes come from `pandas.util.hash_array` (SipHash, fixed key); each file
records the hash of a probe string, and files written under a different hash function are
re-hashed from their stored ids, so a pandas upgrade cannot silently break dedup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hyperline_sync.state import store
from hyperline_sync.state.checkpoint import read_acked
from hyperline_sync.state.store import Location

__all__ = ["SeenIds", "hash_ids", "id_file", "ids_root", "read_hashes", "write_ids"]

# Arrow's default pool (mimalloc) keeps the pages it frees for reuse: reading the window's id files
# and writing each object's ids held ~35 MB of RSS by the third day of a 3M-line sync (bench/). The
# system allocator gives them back. The setting is process-wide; in a sync task, this is the only
# Arrow user.
pa.set_memory_pool(pa.system_memory_pool())

_PROBE = "hyperline-sync dedup probe"
_PROBE_KEY = b"hyperline_sync.hash_probe"


def hash_ids(ids: Iterable[str] | np.ndarray) -> np.ndarray:
    """64-bit hashes (`uint64`) of message ids."""
    values = ids if isinstance(ids, np.ndarray) and ids.dtype == object else np.asarray(list(ids), dtype=object)
    if values.size == 0:
        return np.empty(0, dtype=np.uint64)
    return pd.util.hash_array(values, categorize=False)


_PROBE_HASH = str(int(hash_ids(np.array([_PROBE], dtype=object))[0])).encode()


def ids_root(state_dir: Location, pipeline: str) -> Location:
    """The folder of a pipeline's id files, one subfolder per day."""
    return state_dir / pipeline / "ids"


def id_file(state_dir: Location, pipeline: str, day: date, key: str) -> Location:
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()
    return ids_root(state_dir, pipeline) / day.isoformat() / f"{digest}.parquet"


class _SortedHashes:
    """A growing set of hashes kept as a few sorted arrays whose sizes halve (a tiny LSM tree)."""

    def __init__(self, initial: np.ndarray | None = None) -> None:
        self.levels: list[np.ndarray] = []
        if initial is not None and initial.size:
            self.levels.append(np.sort(initial))

    def __len__(self) -> int:
        return sum(level.size for level in self.levels)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        found = np.zeros(hashes.size, dtype=bool)
        for level in self.levels:
            positions = np.searchsorted(level, hashes)
            positions[positions == level.size] = 0
            found |= level[positions] == hashes
        return found

    def add(self, hashes: np.ndarray) -> None:
        if not hashes.size:
            return
        self.levels.append(np.sort(hashes))
        while len(self.levels) > 1 and self.levels[-1].size >= self.levels[-2].size:
            merged = np.concatenate((self.levels.pop(), self.levels.pop()))
            merged.sort()
            self.levels.append(merged)


class SeenIds:
    """The message ids a partition's sync must not send again (see module docstring).

    `dry_run_dir` is a dry run's own store: `commit_object` writes there instead of `state_dir`, and
    the earlier days of the window are read from both, so the days of one dry run dedup against
    each other as a real run's do while real progress stays untouched. The day's own ids are read
    from `state_dir` only: a retried dry-run task reads every object again. `pending`: hashes of the
    ids earlier days of the window hold but may not have sent yet (`id_index.pending_earlier_ids`).
    """

    def __init__(
        self,
        state_dir: Location | str,
        pipeline: str,
        day: date,
        window_days: int,
        include_own_partition: bool = True,
        dry_run_dir: Location | None = None,
        pending: np.ndarray | None = None,
    ) -> None:
        self.state_dir = Path(state_dir) if isinstance(state_dir, str) else state_dir
        self.commit_dir = self.state_dir if dry_run_dir is None else dry_run_dir
        self.pipeline = pipeline
        self.day = day
        self.duplicates = 0
        earlier = [day - timedelta(days=back) for back in range(window_days, 0, -1)]
        known = self._load(self.state_dir, [*earlier, day] if include_own_partition else earlier)
        if dry_run_dir is not None:
            known = np.concatenate((known, self._load(self.commit_dir, earlier)))
        if pending is not None:
            known = np.concatenate((known, pending))
        self._known = _SortedHashes(known)
        self._run = _SortedHashes()

    @property
    def known_count(self) -> int:
        """How many ids were loaded from earlier partitions and committed objects."""
        return len(self._known)

    def _load(self, root: Location, days: list[date]) -> np.ndarray:
        parts: list[np.ndarray] = []
        for day in days:
            folder = ids_root(root, self.pipeline) / day.isoformat()
            files, logs = id_files(store.list_files(folder, recursive=not isinstance(folder, Path)))
            parts.extend(read_hashes(folder / name) for name in files)
            parts.extend(hash_ids(read_acked(folder / name)) for name in logs)
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)

    def filter(self, events: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        """Events whose `message_id` was not seen before (first occurrence kept), and how many were dropped."""
        if events.empty:
            return events, 0
        hashes = hash_ids(events["message_id"].to_numpy(dtype=object))
        first_in_chunk = ~pd.Series(hashes).duplicated().to_numpy()
        keep = first_in_chunk & ~self._known.contains(hashes) & ~self._run.contains(hashes)
        self._run.add(hashes[keep])
        duplicates = int(keep.size - keep.sum())
        self.duplicates += duplicates
        if duplicates == 0:
            return events, 0
        return events[keep], duplicates

    def replay(self, events: pd.DataFrame) -> None:
        """Mark the ids of events an earlier attempt already settled as passed in this run (a resumed
        unit's saved chunks), so that later copies in the unit are duplicates as they were then."""
        if not events.empty:
            hashes = hash_ids(events["message_id"].to_numpy(dtype=object))
            self._run.add(np.unique(hashes[~self._known.contains(hashes)]))

    def commit_object(self, key: str, ids: Iterable[str]) -> Location:
        """Persist the ids of an object whose events all have Hyperline's answer (atomic replace).

        Ids already stored for the key are kept: a rewritten object (GDPR re-copy, new ETag) is
        synced again but delivers nothing already sent, and forgetting those ids would let a later
        day's copy overwrite the first-received one at Hyperline.
        """
        path = id_file(self.commit_dir, self.pipeline, self.day, key)
        values = np.asarray(list(ids), dtype=object)
        if store.exists(path):
            stored = pq.read_table(_source(path), columns=["message_id"]).column("message_id").to_pylist()
            values = pd.unique(np.concatenate([np.asarray(stored, dtype=object), values]))
        write_ids(path, values, key)
        return path


def write_ids(path: Location, values: np.ndarray, key: str) -> np.ndarray:
    """Write message ids (strings) and their hashes as one id file (a whole object, atomically);
    `read_hashes` reads it back. Returns the hashes."""
    hashes = hash_ids(values)
    table = pa.table(
        {"message_id": pa.array(values, type=pa.string()), "h": pa.array(hashes, type=pa.uint64())}
    ).replace_schema_metadata({_PROBE_KEY: _PROBE_HASH, b"source_key": key.encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    store.write_bytes(path, sink.getvalue().to_pybytes())
    return hashes


def id_files(entries: Iterable[store.Entry]) -> tuple[list[str], list[str]]:
    """Of the files listed in an ids folder, the names of the id files and of the `.acked` logs (a
    file on disk, a folder of parts `<name>.parts/<offset>` in object storage), sorted."""
    names = [e.name for e in entries]
    logs = {name.split(store.PARTS + "/")[0] for name in names}
    return sorted(n for n in names if n.endswith(".parquet")), sorted(n for n in logs if n.endswith(".acked"))


def _source(path: Location) -> Path | pa.BufferReader:
    """What pyarrow reads: the file itself on disk, the object's bytes from object storage."""
    if isinstance(path, Path):
        return path
    data = store.read_bytes(path)
    if data is None:
        raise FileNotFoundError(str(path))
    return pa.BufferReader(data)


def read_hashes(path: Location) -> np.ndarray:
    """The 64-bit hashes of an id file's message ids."""
    source = _source(path)
    if (pq.read_schema(source).metadata or {}).get(_PROBE_KEY) == _PROBE_HASH:
        return pq.read_table(source, columns=["h"]).column("h").to_numpy()
    ids = pq.read_table(source, columns=["message_id"]).column("message_id").to_numpy(zero_copy_only=False)
    return hash_ids(ids.astype(object))
