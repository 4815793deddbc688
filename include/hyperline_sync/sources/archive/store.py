"""Where a Segment archive's objects are kept: an S3 bucket or a folder on disk (`file://`).

A store sees object storage as keys: it lists the objects and sub-folders directly under a
prefix and reads an object's raw bytes in blocks. It knows nothing of Segment's layout
(`listing`) or of the objects' contents (`reading`).
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperline_sync.sources.errors import UnitReadError

if TYPE_CHECKING:
    from hyperline_sync.config.models import S3ArchiveSourceConfig

__all__ = ["READ_BLOCK", "ArchiveReadError", "ArchiveStore", "Listed", "LocalStore", "S3ClientSettings", "S3Store",
           "open_store", "s3_client_settings"]

READ_BLOCK = 1 << 20


class ArchiveReadError(UnitReadError):
    """An object or listing could not be read. `key` is the object key (or listed prefix)."""


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    etag: str


class ArchiveStore(ABC):
    """Object storage seen as keys. `base` is the key prefix of the folder holding `segment-logs/`."""

    base: str

    @abstractmethod
    def list_objects(self, prefix: str) -> list[Listed]:
        """Objects directly under `prefix` (which ends with `/`); empty if the folder does not exist."""

    @abstractmethod
    def list_folders(self, prefix: str) -> list[str]:
        """Names of the sub-folders directly under `prefix`."""

    @abstractmethod
    def has_keys(self, prefix: str) -> bool:
        """Whether anything exists under `prefix`, at any depth (one cheap request)."""

    @abstractmethod
    def url(self, prefix: str) -> str:
        """Where `prefix` is, as a URL (`s3://bucket/key-prefix`, `file:///folder/`), for messages."""

    @abstractmethod
    def read_blocks(self, key: str, etag: str | None = None) -> Iterator[bytes]:
        """Raw bytes of an object in blocks; raises `ArchiveReadError`. `etag` guards against rewrites."""


class LocalStore(ArchiveStore):
    """An archive copied to disk (`file://`). ETags are the MD5 of the bytes, as S3 gives for
    single-part uploads, so the same archive lists identically on disk and on S3."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = ""

    def _dir(self, prefix: str) -> Path:
        if not self.root.is_dir():
            raise ArchiveReadError(str(self.root), "archive folder not found")
        return self.root / prefix

    def list_objects(self, prefix: str) -> list[Listed]:
        listed = []
        for entry in self._scan(prefix):
            if entry.is_file():
                key = prefix + entry.name
                listed.append(Listed(key, entry.stat().st_size, self._md5(key)))
        return listed

    def list_folders(self, prefix: str) -> list[str]:
        return [entry.name for entry in self._scan(prefix) if entry.is_dir()]

    def has_keys(self, prefix: str) -> bool:
        folder = self._dir(prefix)
        try:
            with os.scandir(folder) as entries:
                return next(entries, None) is not None
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise ArchiveReadError(prefix, f"cannot list folder: {exc.strerror or exc}") from exc

    def url(self, prefix: str) -> str:
        return f"file://{self.root / prefix}/"

    def _scan(self, prefix: str) -> list[os.DirEntry[str]]:
        folder = self._dir(prefix)
        try:
            with os.scandir(folder) as entries:
                return list(entries)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ArchiveReadError(prefix, f"cannot list folder: {exc.strerror or exc}") from exc

    def _md5(self, key: str) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        for block in self.read_blocks(key):
            digest.update(block)
        return digest.hexdigest()

    def read_blocks(self, key: str, etag: str | None = None) -> Iterator[bytes]:
        path = self.root / key
        try:
            with open(path, "rb") as handle:
                while block := handle.read(READ_BLOCK):
                    yield block
        except FileNotFoundError as exc:
            raise ArchiveReadError(key, "object not found") from exc
        except PermissionError as exc:
            raise ArchiveReadError(key, "permission denied") from exc
        except OSError as exc:
            raise ArchiveReadError(key, f"read failed: {exc.strerror or exc}") from exc


class S3Store(ArchiveStore):
    """An archive in an S3 bucket (or any S3-compatible server), read with a boto3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""

    def _pages(self, prefix: str) -> Iterator[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        try:
            yield from paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
        except ClientError as exc:
            raise ArchiveReadError(self.url(prefix), _client_error_reason(exc)) from exc
        except BotoCoreError as exc:
            raise ArchiveReadError(self.url(prefix), f"S3 listing failed: {exc}") from exc

    def list_objects(self, prefix: str) -> list[Listed]:
        return [
            Listed(item["Key"], int(item["Size"]), item["ETag"].strip('"'))
            for page in self._pages(prefix)
            for item in page.get("Contents", ())
        ]

    def list_folders(self, prefix: str) -> list[str]:
        return [
            item["Prefix"][len(prefix) :].rstrip("/")
            for page in self._pages(prefix)
            for item in page.get("CommonPrefixes", ())
        ]

    def has_keys(self, prefix: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except ClientError as exc:
            raise ArchiveReadError(self.url(prefix), _client_error_reason(exc)) from exc
        except BotoCoreError as exc:
            raise ArchiveReadError(self.url(prefix), f"S3 listing failed: {exc}") from exc
        return bool(listed.get("KeyCount") or listed.get("Contents"))

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def read_blocks(self, key: str, etag: str | None = None) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError
        from urllib3.exceptions import HTTPError

        extra = {"IfMatch": f'"{etag}"'} if etag else {}
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
            try:
                while block := body.read(READ_BLOCK):
                    yield block
            finally:
                body.close()
        except ClientError as exc:
            raise ArchiveReadError(key, _client_error_reason(exc)) from exc
        except (BotoCoreError, HTTPError, OSError) as exc:
            raise ArchiveReadError(key, f"S3 read failed: {exc}") from exc


def _client_error_reason(exc: Any) -> str:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    reasons = {
        "NoSuchKey": "object not found",
        "404": "object not found",
        "NoSuchBucket": "bucket not found",
        "AccessDenied": "access denied",
        "403": "access denied",
        "PreconditionFailed": "object changed since it was listed (ETag mismatch)",
        "412": "object changed since it was listed (ETag mismatch)",
    }
    return reasons.get(code, f"S3 error {code or 'unknown'}: {exc}")


def open_store(source_cfg: S3ArchiveSourceConfig, s3: S3ClientSettings | None = None) -> ArchiveStore:
    """The store behind a source's url: `LocalStore` for file://, `S3Store` for s3://, whose client
    comes from `s3` when given (a worker process), else from the source's Airflow connection."""
    if source_cfg.scheme == "file":
        return LocalStore(source_cfg.local_root)
    client = s3.client() if s3 is not None else _s3_client(source_cfg.aws_conn_id)
    return S3Store(client, source_cfg.bucket, source_cfg.prefix)


@dataclass(frozen=True)
class S3ClientSettings:
    """An S3 client's settings and credentials, resolved from an Airflow connection by a task, for
    a worker process that cannot ask Airflow (in Airflow 3 only the task's supervisor can). The
    secrets are left out of the repr, so a logged or failed settings object does not show them."""

    endpoint_url: str | None
    region_name: str | None
    verify: bool | str | None
    config: Any  # botocore.config.Config (addressing style, retries, timeouts)
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def client(self) -> Any:
        import boto3

        session = boto3.session.Session(aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                                        aws_session_token=self.token, region_name=self.region_name)
        return session.client("s3", endpoint_url=self.endpoint_url, config=self.config, verify=self.verify)


def s3_client_settings(aws_conn_id: str | None) -> S3ClientSettings:
    """What `_s3_client` would build a client from, with the credentials of that moment (temporary
    ones, such as an assumed role's, are not renewed by the worker)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=aws_conn_id)
    credentials = hook.get_credentials()
    return S3ClientSettings(hook.conn_config.get_service_endpoint_url("s3"), hook.conn_region_name, hook.verify,
                            hook.config, credentials.access_key, credentials.secret_key, credentials.token)


def _s3_client(aws_conn_id: str | None) -> Any:
    # Airflow is imported here only: the rest of the package stays usable without a scheduler.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=aws_conn_id).get_conn()
