"""Progress inside a unit: what Hyperline has answered so far, so that a rerun sends only the rest.

A unit is recorded as done in the ledger only once every event of it has Hyperline's answer. Before
that the sync saves its progress after every settled send: a chunk's events go out in slices of a
couple of batches (what the hook has on the wire at once), and after each slice:

- the slice's acknowledged messageIds are appended to `<sha1(key)>.chunk_acked` next to the unit's id
  file, and the ids Hyperline refused are kept in the checkpoint (`refused`);
- the slice's dead letters are appended to the unit's `.partial` dead-letter file (`deadletter`);
- then `<sha1(key)>.checkpoint.json` is replaced atomically: the unit's version (ETag) and chunk size,
  the chunks fully settled, the unit's counts so far (a chunk in progress counts only the events of
  its settled slices: read = sent + rejected there) and the sizes of the files above.

When a chunk is settled its ids move to `<sha1(key)>.acked` (one id a line, JSON-quoted when it
could be misread; read by the dedup like the committed id files: the events were delivered), its
transform rejects go to the dead letters, and the checkpoint says one chunk more. A rerun of the
same version with the same chunk size resumes: the files are cut back to the saved sizes (dropping
what a send in flight may have appended), the settled chunks are read again but not sent, the chunk
in progress is sent without the events its settled slices already had answered, and the unit's
counts start from the saved ones, so the ledger row ends as if the unit had been synced in one go.
After any fault, what is posted again is at most what was posted and not yet checkpointed: the
slice in flight and the next chunk's first slice, sent ahead (`unit_sync.IN_FLIGHT_BATCHES`). The run's own counts
leave those lines out: they are in `PartitionOutcome.resumed`. When the unit is done its ids are
committed to the id file and the checkpoint files are removed.

A checkpoint of another version or chunk size is not resumed: the unit is read from its start, and
the ids already acknowledged stay known (as the committed ids of a rewritten object do), so they count
as duplicates instead of being posted again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import orjson

from hyperline_sync.state import store
from hyperline_sync.state.schema import Counts
from hyperline_sync.state.store import Location


@dataclass(frozen=True)
class SavedProgress:
    """What the checkpoint of a unit holds."""

    chunks: int  # chunks fully settled, from the unit's start
    counts: Counts  # the unit's counts so far (see module docstring)
    letters_bytes: int  # size of the partial dead-letter file
    answered: frozenset[str]  # ids of the chunk in progress that its settled slices had answered


class UnitCheckpoint:
    """The checkpoint files of one unit, next to its id file (`dedup.id_file`). The `.acked` and
    `.chunk_acked` files are logs (`store.log_append`: part objects in object storage)."""

    def __init__(self, id_file: Location, etag: str, chunk_size: int) -> None:
        self.acked = id_file.with_suffix(".acked")
        self.chunk_acked = id_file.with_suffix(".chunk_acked")
        self.path = id_file.with_suffix(".checkpoint.json")
        self.etag, self.chunk_size = etag, chunk_size
        self._acked_bytes = 0
        self._chunk_acked_bytes = 0
        self._refused: list[str] = []  # of the chunk in progress

    def load(self) -> SavedProgress | None:
        """The saved progress to resume from, with the files cut back to it; None to start over."""
        raw = store.read_bytes(self.path)
        try:
            data = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            data = None
        if data is None or not store.log_exists(self.acked):
            # A crash before the first checkpoint: that slice is sent again.
            store.log_remove(self.acked)
            store.log_remove(self.chunk_acked)
            return None
        if (data.get("etag"), data.get("chunk_size")) != (self.etag, self.chunk_size):
            self._acked_bytes = store.log_size(self.acked)  # delivered ids of another version: still known
            store.log_remove(self.chunk_acked)
            store.remove(self.path)
            return None
        store.log_cut(self.acked, data["acked_bytes"])
        store.log_cut(self.chunk_acked, data["chunk_acked_bytes"])
        self._acked_bytes, self._chunk_acked_bytes = data["acked_bytes"], data["chunk_acked_bytes"]
        self._refused = list(data["refused"])
        answered = frozenset(_ids(store.log_read(self.chunk_acked))) | set(self._refused)
        return SavedProgress(data["chunks"], Counts(**data["counts"]), data["letters_bytes"], answered)

    def save_slice(self, chunks: int, counts: Counts, acked_ids: list[str], refused_ids: list[str],
                   letters_bytes: int) -> None:
        """Record a settled slice of the chunk after `chunks` settled chunks."""
        if not self._acked_bytes:
            store.log_append(self.acked, b"")  # exists from the first checkpoint on: `load` requires it
        if acked_ids or not self._chunk_acked_bytes:
            self._chunk_acked_bytes = store.log_append(self.chunk_acked, _encode(acked_ids))
        self._refused.extend(refused_ids)
        self._write(chunks, counts, letters_bytes)

    def save_chunk(self, chunks: int, counts: Counts, letters_bytes: int) -> None:
        """Record `chunks` settled chunks: the ids of the one just settled join the unit's acked ids."""
        self._acked_bytes = store.log_append(self.acked, store.log_read(self.chunk_acked))
        self._refused = []
        self._chunk_acked_bytes = 0
        self._write(chunks, counts, letters_bytes)
        store.log_remove(self.chunk_acked)

    def _write(self, chunks: int, counts: Counts, letters_bytes: int) -> None:
        data = {"etag": self.etag, "chunk_size": self.chunk_size, "chunks": chunks, "counts": counts.as_dict(),
                "acked_bytes": self._acked_bytes, "chunk_acked_bytes": self._chunk_acked_bytes,
                "refused": self._refused, "letters_bytes": letters_bytes}
        store.write_bytes(self.path, orjson.dumps(data))

    def acked_ids(self) -> list[str]:
        """Every id of the settled chunks acknowledged so far."""
        return _ids(store.log_read(self.acked, self._acked_bytes))

    def clear(self) -> None:
        """Forget the unit's progress (done, or to be redone from its start)."""
        store.remove(self.path)
        store.log_remove(self.acked)
        store.log_remove(self.chunk_acked)
        self._acked_bytes = self._chunk_acked_bytes = 0
        self._refused = []


def _encode(ids: list[str]) -> bytes:
    """One id a line: as is, or as a JSON string when it could be misread (a newline, a leading quote)."""
    text = "\n".join(ids)
    if text.count("\n") == len(ids) - 1 and '"' not in text and "\r" not in text:  # the usual case, fast
        return (text + "\n").encode() if ids else b""
    return b"".join(orjson.dumps(i) + b"\n" if "\n" in i or "\r" in i or i.startswith('"') else
                    i.encode() + b"\n" for i in ids)


def read_acked(log: Location) -> list[str]:
    """The ids of an `.acked` log (for the dedup)."""
    return _ids(store.log_read(log))


def _ids(data: bytes) -> list[str]:
    text = data.decode()
    lines = text.split("\n")
    lines.pop()  # after the last newline: nothing, or a line cut short by a crash (not an acknowledged id)
    if '"' not in text:
        return lines
    ids = []
    for line in lines:
        if not line.startswith('"'):
            ids.append(line)
            continue
        with contextlib.suppress(orjson.JSONDecodeError):
            ids.append(orjson.loads(line))
    return ids
