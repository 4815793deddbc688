"""Dead letters: every rejected event, with its reason and where it came from, secrets removed.

One gzipped JSONL file per source object and partition, rewritten each time the object is
processed from its start, so the files always agree with the ledger (the latest processing of an
object wins). While an object is synced, the rows of each settled chunk are appended to
`<file>.partial` as one gzip member (a file of several members is still one gzip file); the sync's
checkpoint records its size, so a rerun resuming the object keeps the rows of the part already done
(`resume`) and publishes them with its own at the end.
Lines hold `reason`, `source_key`, `line_no`, `partition`, `run_id`, and the `event` (parsed,
scrubbed) or the `raw` line (truncated, scrubbed) when it could not be parsed.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from hyperline_sync.state import store
from hyperline_sync.state.store import Location

# Keys whose values are credentials wherever they appear (Segment puts writeKey on archived lines).
SECRET_KEYS = frozenset({"writekey", "write_key", "password", "api_key", "apikey", "secret", "authorization"})
_RAW_SECRET = re.compile(
    rb'("(?:writeKey|write_key|password|api_?[kK]ey|secret|[aA]uthorization)"\s*:\s*)"(?:[^"\\]|\\.)*"'
)
RAW_LIMIT = 2048
REDACTED = "[redacted]"


def scrub(value: Any) -> Any:
    """A copy of `value` with every secret-named key's value replaced."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if str(k).lower() in SECRET_KEYS else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def scrub_raw(line: bytes | str) -> str:
    """A raw input line, cut to RAW_LIMIT bytes, with secret-named JSON values replaced."""
    data = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
    data = _RAW_SECRET.sub(rb'\1"' + REDACTED.encode() + rb'"', data[:RAW_LIMIT])
    return data.decode("utf-8", "replace")


def dead_letters_root(output_dir: Location, pipeline: str) -> Location:
    """The folder of a pipeline's dead letters, one subfolder per partition."""
    return output_dir / pipeline / "dead_letters"


def dead_letter_path(output_dir: Location, pipeline: str, partition: str, source_key: str) -> Location:
    return dead_letter_file(dead_letters_root(output_dir, pipeline), partition, source_key)


def dead_letter_file(root: Location, partition: str, source_key: str) -> Location:
    """An object's dead-letter file under a dead-letters folder (a pipeline's, or a dry run's own)."""
    return root / partition / f"{Path(source_key).name}.jsonl.gz"


class ObjectDeadLetters:
    """Collects one object's rejects; `save()` makes the rows so far durable, `close()` publishes the
    file (or removes a stale one)."""

    def __init__(self, path: Location, partition: str, source_key: str, run_id: str) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self._base = {"partition": partition, "source_key": source_key, "run_id": run_id}
        self._rows: list[bytes] = []
        self.count = 0

    def add(self, reason: str, line_no: int | None, *, event: Mapping | None = None, raw: bytes | str | None = None,
            source_key: str | None = None) -> None:
        row: dict[str, Any] = {"reason": reason, **self._base, "line_no": line_no}
        if source_key is not None:
            row["source_key"] = source_key
        if event is not None:
            row["event"] = scrub(event)
        if raw is not None:
            row["raw"] = scrub_raw(raw)
        self._rows.append(orjson.dumps(row, default=str) + b"\n")
        self.count += 1

    def resume(self, size: int) -> None:
        """Start from the first `size` bytes of the partial file (0: from nothing)."""
        self._rows = []
        if size <= 0:
            store.log_remove(self.partial)
            return
        if not store.log_exists(self.partial):  # published, but the unit's end was not recorded: take it back
            store.log_adopt(self.path, self.partial)
        store.log_cut(self.partial, size)

    def save(self) -> int:
        """Append the rows added since the last save to the partial file; its size after."""
        if self._rows:
            size = store.log_append(self.partial, gzip.compress(b"".join(self._rows), compresslevel=5, mtime=0))
            self._rows = []
            return size
        return store.log_size(self.partial)

    def close(self) -> Location | None:
        """Publish atomically; returns the path, or None when the object had no rejects."""
        if not self.save():
            store.remove(self.path)
            return None
        store.log_publish(self.partial, self.path)
        return self.path

    def publish(self) -> Location | None:
        """Publish a copy of the rows so far (an object that failed), keeping the partial file."""
        if not self.save():
            return None
        store.write_bytes(self.path, store.log_read(self.partial))
        return self.path

    def discard(self) -> None:
        """Forget the rows not saved yet (those of a chunk whose send did not settle)."""
        self._rows = []


def read_dead_letters(path: Location | str) -> list[dict]:
    """All rows of one dead-letter file (for tests, reports and operators' scripts)."""
    data = store.read_bytes(Path(path) if isinstance(path, str) else path)
    if data is None:
        raise FileNotFoundError(str(path))
    return [orjson.loads(line) for line in gzip.decompress(data).splitlines() if line.strip()]
