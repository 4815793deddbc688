"""Segment's archive layout: which day folders a source has, and which objects a day holds.

Layout (Segment's S3 destination): `<url>/segment-logs/<source_id>/<day-ms>/<opaque>.gz`, where
`<day-ms>` is the 13-digit epoch milliseconds of 00:00 UTC of the received day. Only `*.gz`
objects directly under that folder are data; `dummy-object.txt`, `segment-logs/test/...` and
anything nested deeper are ignored.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from hyperline_sync.sources.archive.store import ArchiveReadError, ArchiveStore

if TYPE_CHECKING:
    from hyperline_sync.config.models import S3ArchiveSourceConfig

__all__ = ["ArchiveObject", "day_folder", "days_with_data", "list_partition", "partition_prefix"]

_DAY_FOLDER = re.compile(r"^\d{13}$")


@dataclass(frozen=True)
class ArchiveObject:
    key: str
    size: int
    etag: str
    day: date

    @property
    def watermark(self) -> None:
        """An object's version is its ETag alone; nothing orders the data inside a day folder."""
        return None


def day_folder(day: date) -> str:
    """`1717977600000` for 2024-06-10: epoch milliseconds of 00:00 UTC."""
    return str(calendar.timegm(day.timetuple()) * 1000)


def _source_prefix(store: ArchiveStore, source_cfg: S3ArchiveSourceConfig) -> str:
    return f"{store.base}segment-logs/{source_cfg.source_id}/"


def partition_prefix(store: ArchiveStore, source_cfg: S3ArchiveSourceConfig, day: date) -> str:
    return f"{_source_prefix(store, source_cfg)}{day_folder(day)}/"


def list_partition(store: ArchiveStore, source_cfg: S3ArchiveSourceConfig, day: date) -> list[ArchiveObject]:
    """The `*.gz` objects of one received-day folder, sorted by key.

    An empty day folder is normal (a quiet day), unless the source has no folder at all: then the
    url or the source id is wrong and the "quiet day" would be a silent failure every hour, so it
    raises `ArchiveReadError` naming where it looked (one more listing of at most one key, on empty days only).
    """
    listed = store.list_objects(partition_prefix(store, source_cfg, day))
    if not listed and not store.has_keys(_source_prefix(store, source_cfg)):
        where = store.url(_source_prefix(store, source_cfg))
        raise ArchiveReadError(where, f"no day folders of source {source_cfg.source_id!r}: check source.url and "
                                      "source.source_id")
    objects = [ArchiveObject(item.key, item.size, item.etag, day) for item in listed if item.key.endswith(".gz")]
    return sorted(objects, key=lambda obj: obj.key)


def days_with_data(
    store: ArchiveStore, source_cfg: S3ArchiveSourceConfig, start: date | None = None, end: date | None = None
) -> list[date]:
    """Received days that have a folder, within `[start, end]` when given, ascending."""
    days = []
    for name in store.list_folders(_source_prefix(store, source_cfg)):
        if not _DAY_FOLDER.match(name) or int(name) % 86_400_000:
            continue
        day = datetime.fromtimestamp(int(name) / 1000, tz=UTC).date()
        if (start is None or day >= start) and (end is None or day <= end):
            days.append(day)
    return sorted(days)
