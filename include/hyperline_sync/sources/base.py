"""What `sync_partition` reads from: a source of units per day, each streamed as transformed chunks.

A unit is the smallest piece of a partition whose progress the ledger records: an archive object
(key + ETag) or a warehouse slice. A unit whose version is unchanged since it was synced is skipped;
a new version (a rewritten object, rows loaded late) is read again. Sources raise `UnitReadError`
(hyperline_sync.sources.errors) for a unit that cannot be read, which fails that unit and lets the others sync.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Protocol, TypeVar

from hyperline_sync.config.models import PipelineConfig, S3ArchiveSourceConfig
from hyperline_sync.pipeline.transform import ChunkResult, transform_chunk
from hyperline_sync.sources.archive.ids import object_message_ids
from hyperline_sync.sources.archive.listing import ArchiveObject, list_partition
from hyperline_sync.sources.archive.reading import iter_line_chunks
from hyperline_sync.sources.archive.store import open_store


class Unit(Protocol):
    key: str
    etag: str  # the unit's version
    day: dt.date

    @property
    def watermark(self) -> str | None:
        """How far the unit's data goes (a warehouse slice: its newest uuid_ts), or None."""
        ...


U = TypeVar("U", bound=Unit)


class PartitionSource(Protocol[U]):
    def list_units(self, day: dt.date) -> list[U]: ...

    def chunks(self, unit: U, chunk_size: int) -> Iterator[ChunkResult]: ...

    def message_ids(self, unit: U, chunk_size: int) -> list[str]:
        """The messageIds the unit's chunks can hold (a superset will do), read as cheaply as the
        source allows: later days of the dedup window drop them (`pipeline.id_index`)."""
        ...


class ArchiveSource:
    """The Segment S3 archive (or a file:// copy): units are the day folder's objects."""

    def __init__(self, pipeline: PipelineConfig) -> None:
        if not isinstance(pipeline.source, S3ArchiveSourceConfig):
            raise TypeError(f"pipeline {pipeline.name}: an archive source needs an s3_archive config")
        self.config, self.mapping = pipeline.source, pipeline.mapping
        self.store = open_store(self.config)

    def list_units(self, day: dt.date) -> list[ArchiveObject]:
        return list_partition(self.store, self.config, day)

    def chunks(self, unit: ArchiveObject, chunk_size: int) -> Iterator[ChunkResult]:
        for chunk in iter_line_chunks(self.store, unit, chunk_size):
            yield transform_chunk(chunk, self.mapping)

    def message_ids(self, unit: ArchiveObject, chunk_size: int) -> list[str]:
        return object_message_ids(self.store, unit)


def open_source(pipeline: PipelineConfig) -> PartitionSource[Any]:
    kind = pipeline.source.kind
    if kind == "s3_archive":
        return ArchiveSource(pipeline)
    if kind == "warehouse":
        from hyperline_sync.sources.warehouse.source import WarehouseSource

        return WarehouseSource(pipeline)
    raise ValueError(f"pipeline {pipeline.name}: no reader for source kind {kind!r}")
