"""Progress inside a unit: what Hyperline has answered so far, so that a rerun sends only the rest.

A unit is recorded as done in the ledger only once every event of it has Hyperline's answer. Before
that, after every chunk whose send has settled (its events acknowledged or refused), the sync saves:

- the chunk's acknowledged messageIds, appended to `<ids day folder>/<sha1(key)>.acked` (one JSON
  string a line; read by the dedup like the committed id files: the events were delivered);
- the chunk's dead letters, appended to the unit's `.partial` dead-letter file (`deadletter`);
- then, atomically, `<sha1(key)>.checkpoint.json`: the unit's version (ETag) and chunk size, how many
  chunks are settled, the unit's counts over them, and the size of both files at that moment.

A rerun of the same version with the same chunk size resumes: both files are cut back to the saved
sizes (dropping what a chunk in flight may have appended), the saved chunks are read again but not
sent (`outcome.resumed` counts their lines), and the unit's counts start from the saved ones, so the
ledger row ends as if the unit had been synced in one go. After any fault, what is posted again is
at most the chunk whose send had not settled. When the unit is done its ids are committed to the id
file and the checkpoint files are removed.

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

    chunks: int  # settled chunks, from the unit's start
    counts: Counts  # the unit's counts over those chunks
    letters_bytes: int  # size of the partial dead-letter file after them


class UnitCheckpoint:
    """The checkpoint files of one unit, next to its id file (`dedup.id_file`)."""

    def __init__(self, id_file: Path, etag: str, chunk_size: int) -> None:
        self.acked = id_file.with_suffix(".acked")
        self.path = id_file.with_suffix(".checkpoint.json")
        self.etag, self.chunk_size = etag, chunk_size
        self._acked_bytes = 0

    def load(self) -> SavedProgress | None:
        """The saved progress to resume from, with the acked ids cut back to it; None to start over."""
        try:
            data = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            data = None
        if data is None or not self.acked.exists():
            self.acked.unlink(missing_ok=True)  # a crash before the first checkpoint: that chunk is resent
            return None
        if (data.get("etag"), data.get("chunk_size")) != (self.etag, self.chunk_size):
            self._acked_bytes = self.acked.stat().st_size  # delivered ids of another version: still known
            self.path.unlink(missing_ok=True)
            return None
        with open(self.acked, "r+b") as f:
            f.truncate(data["acked_bytes"])
        self._acked_bytes = data["acked_bytes"]
        return SavedProgress(data["chunks"], Counts(**data["counts"]), data["letters_bytes"])

    def save(self, chunks: int, counts: Counts, acked_ids: list[str], letters_bytes: int) -> None:
        """Record `chunks` settled chunks: append their newly acknowledged ids, then the checkpoint."""
        if acked_ids or not self.acked.exists():
            self.acked.parent.mkdir(parents=True, exist_ok=True)
            with open(self.acked, "ab") as f:
                f.write(b"".join(orjson.dumps(i) + b"\n" for i in acked_ids))
        self._acked_bytes = self.acked.stat().st_size
        data = {"etag": self.etag, "chunk_size": self.chunk_size, "chunks": chunks, "counts": counts.as_dict(),
                "acked_bytes": self._acked_bytes, "letters_bytes": letters_bytes}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(data))
        os.replace(tmp, self.path)

    def acked_ids(self) -> list[str]:
        """Every id acknowledged so far (up to the last save)."""
        with contextlib.suppress(FileNotFoundError), open(self.acked, "rb") as f:
            return _ids(f.read(self._acked_bytes))
        return []

    def clear(self) -> None:
        """Forget the unit's progress (done, or to be redone from its start)."""
        self.path.unlink(missing_ok=True)
        self.acked.unlink(missing_ok=True)
        self._acked_bytes = 0


def read_acked(path: Path) -> list[str]:
    """The ids of an `.acked` file (for the dedup)."""
    return _ids(path.read_bytes())


def _ids(data: bytes) -> list[str]:
    # One JSON string a line; a line cut short by a crash mid-append is not an acknowledged id.
    ids = []
    for line in data.splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            ids.append(orjson.loads(line))
    return ids
