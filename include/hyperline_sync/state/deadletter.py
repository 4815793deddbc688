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
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

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


def dead_letters_root(output_dir: Path, pipeline: str) -> Path:
    """The folder of a pipeline's dead letters, one subfolder per partition."""
    return Path(output_dir) / pipeline / "dead_letters"


def dead_letter_path(output_dir: Path, pipeline: str, partition: str, source_key: str) -> Path:
    return dead_letter_file(dead_letters_root(output_dir, pipeline), partition, source_key)


def dead_letter_file(root: Path, partition: str, source_key: str) -> Path:
    """An object's dead-letter file under a dead-letters folder (a pipeline's, or a dry run's own)."""
    return root / partition / f"{Path(source_key).name}.jsonl.gz"


class ObjectDeadLetters:
    """Collects one object's rejects; `save()` makes the rows so far durable, `close()` publishes the
    file (or removes a stale one)."""

    def __init__(self, path: Path, partition: str, source_key: str, run_id: str) -> None:
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
            self.partial.unlink(missing_ok=True)
            return
        if not self.partial.exists():  # published, but the unit's end was not recorded: take it back
            os.replace(self.path, self.partial)
        with open(self.partial, "r+b") as f:
            f.truncate(size)

    def save(self) -> int:
        """Append the rows added since the last save to the partial file; its size after."""
        if self._rows:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            with open(self.partial, "ab") as f:
                f.write(gzip.compress(b"".join(self._rows), compresslevel=5, mtime=0))
            self._rows = []
        return self.partial.stat().st_size if self.partial.exists() else 0

    def close(self) -> Path | None:
        """Publish atomically; returns the path, or None when the object had no rejects."""
        if not self.save():
            self.path.unlink(missing_ok=True)
            return None
        os.replace(self.partial, self.path)
        return self.path

    def publish(self) -> Path | None:
        """Publish a copy of the rows so far (an object that failed), keeping the partial file."""
        if not self.save():
            return None
        tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.copyfile(self.partial, tmp)
        os.replace(tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Forget the rows not saved yet (those of a chunk whose send did not settle)."""
        self._rows = []


def read_dead_letters(path: Path) -> list[dict]:
    """All rows of one dead-letter file (for tests, reports and operators' scripts)."""
    with gzip.open(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]
