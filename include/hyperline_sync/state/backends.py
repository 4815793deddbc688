"""The object stores a state location can be in (see `state.store`): keys relative to its root.

`S3Backend` talks to S3 (or any S3-compatible server) with a boto3 client; `FsspecBackend` to any
filesystem Airflow's `ObjectStoragePath` brings. Every failure is a `StateStoreError` naming the URL.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class StateStoreError(OSError):
    """The state store could not be read or written; the message names its URL and why."""


@dataclass(frozen=True)
class Entry:
    """A file under a listed folder: its path relative to the folder (POSIX), size and mtime (epoch s)."""

    name: str
    size: int
    modified: float


class Backend(ABC):
    """An object store seen as keys relative to the state location's root."""

    @abstractmethod
    def url(self, key: str) -> str: ...

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object's bytes; None when there is no such object."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def delete(self, keys: list[str]) -> None: ...

    @abstractmethod
    def list(self, prefix: str) -> list[Entry]:
        """Every object below `prefix/`, at any depth (names relative to it)."""

    @contextlib.contextmanager
    def errors(self, key: str) -> Iterator[None]:
        try:
            yield
        except StateStoreError:
            raise
        except Exception as exc:
            raise StateStoreError(f"state store {self.url(key)}: {reason(exc)}") from exc


class S3Backend(Backend):
    """s3:// with a boto3 client (the archive source's way, so no s3fs is needed)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}".strip("/") if self.prefix else key

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}".rstrip("/")

    def get(self, key: str) -> bytes | None:
        with self.errors(key):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            except self.client.exceptions.NoSuchKey:
                return None

    def put(self, key: str, data: bytes) -> None:
        with self.errors(key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects' limit
            batch = keys[start:start + 1000]
            with self.errors(batch[0]):
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": self._key(k)} for k in batch], "Quiet": True})
            if answer.get("Errors"):
                error = answer["Errors"][0]
                raise StateStoreError(f"state store {self.url(batch[0])}: cannot delete: {error.get('Code')}")

    def list(self, prefix: str) -> list[Entry]:
        full = self._key(prefix) + "/" if self._key(prefix) else ""
        entries: list[Entry] = []
        with self.errors(prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                entries.extend(Entry(item["Key"][len(full):], item["Size"], item["LastModified"].timestamp())
                               for item in page.get("Contents", ()))
        return entries


class FsspecBackend(Backend):
    """Any other scheme, through Airflow's ObjectStoragePath (its provider brings the fsspec filesystem)."""

    def __init__(self, root: Any) -> None:
        self.root, self.fs = root, root.fs

    def _path(self, key: str) -> str:
        return (self.root / key).path if key else self.root.path

    def url(self, key: str) -> str:
        return str(self.root / key) if key else str(self.root)

    def get(self, key: str) -> bytes | None:
        with self.errors(key):
            try:
                return bytes(self.fs.cat_file(self._path(key)))
            except FileNotFoundError:
                return None

    def put(self, key: str, data: bytes) -> None:
        with self.errors(key):
            self.fs.pipe_file(self._path(key), data)

    def delete(self, keys: list[str]) -> None:
        with self.errors(keys[0] if keys else ""):
            for key in keys:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(self._path(key))

    def list(self, prefix: str) -> list[Entry]:
        base = self._path(prefix).rstrip("/")
        with self.errors(prefix):
            self.fs.invalidate_cache(base)  # other workers write here too
            try:
                found = self.fs.find(base, detail=True)
            except FileNotFoundError:
                return []
        return [Entry(path[len(base) + 1:], int(info.get("size") or 0), _mtime(info))
                for path, info in found.items() if path.startswith(base + "/") and info.get("type") != "directory"]


def reason(exc: BaseException) -> str:
    error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    if error.get("Code"):
        return f"{error['Code']}: {error.get('Message') or 'no message'}"
    return f"{type(exc).__name__}: {exc}"


def _mtime(info: dict) -> float:
    value = info.get("mtime") or info.get("LastModified") or info.get("updated") or 0
    return value.timestamp() if hasattr(value, "timestamp") else float(value)
