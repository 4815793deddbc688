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
After any fault, what is posted again is at most the slice that was in flight. The run's own counts
leave those lines out: they are in `PartitionOutcome.resumed`. When the unit is done its ids are
committed to the id file and the checkpoint files are removed.

A checkpoint of another version or chunk size is not resumed: the unit is read from its start, and
the ids already acknowledged stay known (as the committed ids of a rewritten object do), so they count
as duplicates instead of being posted again.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from hyperline_sync.state.schema import Counts


@dataclass(frozen=True)
class SavedProgress:
    """What the checkpoint of a unit holds."""

    chunks: int  # chunks fully settled, from the unit's start
    counts: Counts  # the unit's counts so far (see module docstring)
    letters_bytes: int  # size of the partial dead-letter file
    answered: frozenset[str]  # ids of the chunk in progress that its settled slices had answered


class UnitCheckpoint:
    """The checkpoint files of one unit, next to its id file (`dedup.id_file`)."""

    def __init__(self, id_file: Path, etag: str, chunk_size: int) -> None:
        self.acked = id_file.with_suffix(".acked")
        self.chunk_acked = id_file.with_suffix(".chunk_acked")
        self.path = id_file.with_suffix(".checkpoint.json")
        self.etag, self.chunk_size = etag, chunk_size
        self._acked_bytes = 0
        self._refused: list[str] = []  # of the chunk in progress

    def load(self) -> SavedProgress | None:
        """The saved progress to resume from, with the files cut back to it; None to start over."""
        try:
            data = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            data = None
        if data is None or not self.acked.exists():
            # A crash before the first checkpoint: that slice is sent again.
            self.acked.unlink(missing_ok=True)
            self.chunk_acked.unlink(missing_ok=True)
            return None
        if (data.get("etag"), data.get("chunk_size")) != (self.etag, self.chunk_size):
            self._acked_bytes = self.acked.stat().st_size  # delivered ids of another version: still known
            self.chunk_acked.unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)
            return None
        _cut(self.acked, data["acked_bytes"])
        _cut(self.chunk_acked, data["chunk_acked_bytes"])
        self._acked_bytes = data["acked_bytes"]
        self._refused = list(data["refused"])
        answered = frozenset(_ids(self.chunk_acked.read_bytes()) if self.chunk_acked.exists() else ()) | set(
            self._refused)
        return SavedProgress(data["chunks"], Counts(**data["counts"]), data["letters_bytes"], answered)

    def save_slice(self, chunks: int, counts: Counts, acked_ids: list[str], refused_ids: list[str],
                   letters_bytes: int) -> None:
        """Record a settled slice of the chunk after `chunks` settled chunks."""
        _append(self.acked, [])  # exists from the first checkpoint on: `load` requires it
        _append(self.chunk_acked, acked_ids)
        self._refused.extend(refused_ids)
        self._write(chunks, counts, letters_bytes)

    def save_chunk(self, chunks: int, counts: Counts, letters_bytes: int) -> None:
        """Record `chunks` settled chunks: the ids of the one just settled join the unit's acked ids."""
        pending = self.chunk_acked.read_bytes() if self.chunk_acked.exists() else b""
        self.acked.parent.mkdir(parents=True, exist_ok=True)
        with open(self.acked, "ab") as f:
            f.write(pending)
        self._acked_bytes = self.acked.stat().st_size
        self._refused = []
        self._write(chunks, counts, letters_bytes, chunk_acked_bytes=0)
        self.chunk_acked.unlink(missing_ok=True)

    def _write(self, chunks: int, counts: Counts, letters_bytes: int, chunk_acked_bytes: int | None = None) -> None:
        if chunk_acked_bytes is None:
            chunk_acked_bytes = self.chunk_acked.stat().st_size if self.chunk_acked.exists() else 0
        data = {"etag": self.etag, "chunk_size": self.chunk_size, "chunks": chunks, "counts": counts.as_dict(),
                "acked_bytes": self._acked_bytes, "chunk_acked_bytes": chunk_acked_bytes,
                "refused": self._refused, "letters_bytes": letters_bytes}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(data))
        os.replace(tmp, self.path)

    def acked_ids(self) -> list[str]:
        """Every id of the settled chunks acknowledged so far."""
        with contextlib.suppress(FileNotFoundError), open(self.acked, "rb") as f:
            return _ids(f.read(self._acked_bytes))
        return []

    def clear(self) -> None:
        """Forget the unit's progress (done, or to be redone from its start)."""
        for path in (self.path, self.acked, self.chunk_acked):
            path.unlink(missing_ok=True)
        self._acked_bytes = 0
        self._refused = []


def _append(path: Path, ids: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        f.write(_encode(ids))


def _encode(ids: list[str]) -> bytes:
    """One id a line: as is, or as a JSON string when it could be misread (a newline, a leading quote)."""
    text = "\n".join(ids)
    if text.count("\n") == len(ids) - 1 and '"' not in text and "\r" not in text:  # the usual case, fast
        return (text + "\n").encode() if ids else b""
    return b"".join(orjson.dumps(i) + b"\n" if "\n" in i or "\r" in i or i.startswith('"') else
                    i.encode() + b"\n" for i in ids)


def _cut(path: Path, size: int) -> None:
    if size <= 0:
        path.unlink(missing_ok=True)
        return
    with contextlib.suppress(FileNotFoundError), open(path, "r+b") as f:
        f.truncate(min(size, os.fstat(f.fileno()).st_size))


def read_acked(path: Path) -> list[str]:
    """The ids of an `.acked` file (for the dedup)."""
    return _ids(path.read_bytes())


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
