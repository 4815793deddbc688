"""Where the sync keeps what it needs between runs: a local folder, or a prefix in object storage.

`state.dir` and `state.output_dir` are locations: a `pathlib.Path` for a local folder (plain file
I/O, the fast path of one machine), or a `RemotePath` for `s3://bucket/prefix` (boto3 through the
Airflow connection `state.conn_id`, which may name an S3-compatible `endpoint_url` in its extra) or
any other scheme Airflow's `ObjectStoragePath` supports once its provider is installed (`gs://`...).
Every read and write of the state and output folders goes through the functions of this module.

Readers never see half a file: a local write goes to a temporary file renamed over the target; an
object put is atomic (the old object or the new one). Appended files (a unit's acknowledged ids,
its partial dead letters) are *logs*: locally one file appended to and cut back with `truncate`; in
object storage a folder `<name>.parts/` of whole objects, one per append, each named by the byte
offset it starts at. Sizes are bytes on both, so a checkpoint records the same numbers wherever the
state is, and cutting a log back to a size deletes the parts from there on.

Any failure to reach the store (unknown bucket, access denied, endpoint down) is a `StateStoreError`
naming the location's URL, which never holds credentials (they live in the connection).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Union

from hyperline_sync.state.backends import Backend, Entry, FsspecBackend, S3Backend, StateStoreError, reason

if TYPE_CHECKING:
    from hyperline_sync.config.models import StateConfig

__all__ = ["Entry", "Location", "RemotePath", "StateStoreError", "check_writable", "exists", "list_files",
           "locations", "log_adopt", "log_append", "log_cut", "log_exists", "log_publish", "log_read", "log_remove",
           "log_size", "open_location", "read_bytes", "remove", "remove_tree", "write_bytes", "writer"]

PARTS = ".parts"  # suffix of a log's folder of part objects
_OFFSET_DIGITS = 15


@dataclass(frozen=True)
class RemotePath:
    """A location in object storage: a key below the state root, with the bits of `Path` the sync uses."""

    backend: Backend
    key: str

    def __truediv__(self, other: str) -> RemotePath:
        return RemotePath(self.backend, str(PurePosixPath(self.key, other)) if self.key else str(other))

    @property
    def _pure(self) -> PurePosixPath:
        return PurePosixPath(self.key or ".")

    @property
    def name(self) -> str:
        return self._pure.name

    @property
    def stem(self) -> str:
        return self._pure.stem

    @property
    def suffix(self) -> str:
        return self._pure.suffix

    @property
    def parent(self) -> RemotePath:
        return RemotePath(self.backend, str(self._pure.parent).lstrip("."))

    def with_name(self, name: str) -> RemotePath:
        return RemotePath(self.backend, str(self._pure.with_name(name)))

    def with_suffix(self, suffix: str) -> RemotePath:
        return RemotePath(self.backend, str(self._pure.with_suffix(suffix)))

    def __str__(self) -> str:
        return self.backend.url(self.key)


Location = Union[Path, RemotePath]  # noqa: UP007 (a runtime alias: `|` on a Path class needs 3.10+ objects)


def open_location(value: Path | str, conn_id: str | None = None) -> Location:
    """The location of a configured `state.dir`/`state.output_dir` (a Path, or a URL from the config)."""
    if isinstance(value, Path):
        return value
    scheme, _, rest = value.partition("://")
    if scheme == "s3":
        bucket, _, prefix = rest.partition("/")
        return RemotePath(S3Backend(_s3_client(conn_id), bucket, prefix), "")
    from airflow.sdk import ObjectStoragePath  # Airflow is imported here only

    return RemotePath(FsspecBackend(ObjectStoragePath(value, conn_id=conn_id)), "")


def locations(state: StateConfig) -> tuple[Location, Location]:
    """The state folder and the output folder of a config (one client when both are in one store)."""
    root, out = open_location(state.dir, state.conn_id), state.output_dir
    if isinstance(root, RemotePath) and isinstance(out, str) and out.startswith(f"{state.dir}/"):
        return root, root / out[len(str(state.dir)) + 1:]
    return root, open_location(out, state.conn_id)


def _s3_client(conn_id: str | None) -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id).get_conn()


# -- whole files ------------------------------------------------------------------------------------


def read_bytes(loc: Location) -> bytes | None:
    """The file's bytes; None when it does not exist."""
    if isinstance(loc, Path):
        try:
            return loc.read_bytes()
        except FileNotFoundError:
            return None
    return loc.backend.get(loc.key)


def write_bytes(loc: Location, data: bytes) -> None:
    """Replace the file atomically."""
    if isinstance(loc, Path):
        loc.parent.mkdir(parents=True, exist_ok=True)
        tmp = loc.with_name(f".{loc.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, loc)
        return
    loc.backend.put(loc.key, data)


@contextlib.contextmanager
def writer(loc: Location) -> Iterator[IO[bytes]]:
    """A file to stream into, published atomically when the block ends without error."""
    if isinstance(loc, Path):
        loc.parent.mkdir(parents=True, exist_ok=True)
        tmp = loc.with_name(f".{loc.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                yield f
            os.replace(tmp, loc)
        finally:
            tmp.unlink(missing_ok=True)
        return
    with tempfile.TemporaryFile() as f:
        yield f
        f.seek(0)
        loc.backend.put(loc.key, f.read())


def exists(loc: Location) -> bool:
    if isinstance(loc, Path):
        return loc.exists()
    return loc.backend.get(loc.key) is not None


def remove(loc: Location) -> None:
    """Delete the file, if it exists."""
    if isinstance(loc, Path):
        loc.unlink(missing_ok=True)
    else:
        loc.backend.delete([loc.key])


def list_files(folder: Location, *, recursive: bool = False) -> list[Entry]:
    """The files in `folder` (below it with `recursive`), sorted by name; empty if there is none.
    Temporary files of writes in progress are left out."""
    if isinstance(folder, Path):
        if not folder.is_dir():
            return []
        found = folder.rglob("*") if recursive else folder.iterdir()
        entries = []
        for path in found:
            with contextlib.suppress(FileNotFoundError):  # removed since listed
                if path.is_file() and not path.name.endswith(".tmp"):
                    stat = path.stat()
                    entries.append(Entry(path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime))
        return sorted(entries, key=lambda e: e.name)
    entries = folder.backend.list(folder.key)
    if not recursive:
        entries = [e for e in entries if "/" not in e.name]
    return sorted(entries, key=lambda e: e.name)


def remove_tree(folder: Location) -> None:
    """Delete the folder and everything below it."""
    if isinstance(folder, Path):
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(folder)
        return
    folder.backend.delete([str(PurePosixPath(folder.key, e.name)) for e in folder.backend.list(folder.key)])


def check_writable(folder: Location, token: str) -> None:
    """Write and delete a small object in `folder`: a StateStoreError now, before anything is sent,
    rather than after Hyperline took events whose progress cannot be saved."""
    probe = folder / f".write-probe-{token}"
    try:
        write_bytes(probe, b"")
        remove(probe)
    except StateStoreError:
        raise
    except OSError as exc:
        raise StateStoreError(f"state store {folder}: {reason(exc)}") from exc


# -- logs (appended files) ------------------------------------------------------------------------


def _parts(log: RemotePath) -> list[tuple[int, Entry]]:
    folder = log.key + PARTS
    return sorted((int(e.name), e) for e in log.backend.list(folder) if e.name.isdigit())


def _part_key(log: RemotePath, offset: int) -> str:
    return f"{log.key}{PARTS}/{offset:0{_OFFSET_DIGITS}d}"


def log_exists(log: Location) -> bool:
    return log.exists() if isinstance(log, Path) else bool(_parts(log))


def log_size(log: Location) -> int:
    """Bytes in the log (0 if it does not exist)."""
    if isinstance(log, Path):
        try:
            return log.stat().st_size
        except FileNotFoundError:
            return 0
    parts = _parts(log)
    return parts[-1][0] + parts[-1][1].size if parts else 0


def log_append(log: Location, data: bytes) -> int:
    """Append `data` (creating the log, even with no data); the log's size after."""
    if isinstance(log, Path):
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as f:
            f.write(data)
            return f.tell()
    size = log_size(log)
    if data or not size:
        log.backend.put(_part_key(log, size), data)
    return size + len(data)


def log_read(log: Location, limit: int | None = None) -> bytes:
    """The log's first `limit` bytes (all of them with None); empty if it does not exist."""
    if isinstance(log, Path):
        try:
            with open(log, "rb") as f:
                return f.read() if limit is None else f.read(limit)
        except FileNotFoundError:
            return b""
    chunks = []
    for offset, entry in _parts(log):
        if limit is not None and offset >= limit:
            break
        if entry.size:
            data = log.backend.get(_part_key(log, offset)) or b""
            chunks.append(data if limit is None else data[:limit - offset])
    return b"".join(chunks)


def log_cut(log: Location, size: int) -> None:
    """Cut the log back to its first `size` bytes (removing it for 0): what a crash appended after a
    checkpoint goes."""
    if size <= 0:
        log_remove(log)
        return
    if isinstance(log, Path):
        with contextlib.suppress(FileNotFoundError), open(log, "r+b") as f:
            f.truncate(min(size, os.fstat(f.fileno()).st_size))
        return
    doomed = []
    for offset, entry in _parts(log):
        if offset >= size:
            doomed.append(_part_key(log, offset))
        elif offset + entry.size > size:  # a part across the cut (never written so; kept correct anyway)
            data = log.backend.get(_part_key(log, offset)) or b""
            log.backend.put(_part_key(log, offset), data[:size - offset])
    if doomed:
        log.backend.delete(doomed)


def log_remove(log: Location) -> None:
    if isinstance(log, Path):
        log.unlink(missing_ok=True)
    else:
        keys = [_part_key(log, offset) for offset, _ in _parts(log)]
        if keys:
            log.backend.delete(keys)


def log_publish(log: Location, dst: Location) -> None:
    """Make the log's whole content the file `dst` (atomically), and remove the log."""
    if isinstance(log, Path) and isinstance(dst, Path):
        os.replace(log, dst)
        return
    write_bytes(dst, log_read(log))
    log_remove(log)


def log_adopt(src: Location, log: Location) -> None:
    """Turn the file `src` back into the log (a published file taken back to be appended to)."""
    if isinstance(src, Path) and isinstance(log, Path):
        os.replace(src, log)
        return
    data = read_bytes(src)
    if data is None:
        raise FileNotFoundError(str(src))
    log_remove(log)
    log_append(log, data)
    remove(src)
