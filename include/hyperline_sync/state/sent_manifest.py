"""What Hyperline holds from each unit: per record id, its event_type and a hash of its content.

Written when a unit is done, next to the dedup's id files in
`<state_dir>/<pipeline>/sent/<YYYY-MM-DD>/<sha1(key)>.parquet` (an atomic write of the state store), with
the unit's version (ETag) in the file's metadata. When a unit comes back at another version, the
new events are compared with it (`pipeline.corrections`): what changed and what is gone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hyperline_sync.pipeline.dedup import hash_ids
from hyperline_sync.pipeline.transform import to_events
from hyperline_sync.state import store
from hyperline_sync.state.store import Location

_ETAG = b"etag"

Entry = tuple[str, int]  # (event_type, content hash)


@dataclass
class Manifest:
    etag: str
    entries: dict[str, Entry]  # by record id


def manifest_path(state_dir: Location, pipeline: str, day: str, key: str) -> Location:
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()
    return state_dir / pipeline / "sent" / day / f"{digest}.parquet"


def content_hashes(events: list[dict]) -> np.ndarray:
    """64-bit hashes of events as sent (keys sorted, so that field order does not matter)."""
    texts = np.array([orjson.dumps(e, option=orjson.OPT_SORT_KEYS).decode() for e in events], dtype=object)
    return hash_ids(texts)


def frame_hashes(frame: pd.DataFrame) -> np.ndarray:
    """`content_hashes` of a transformed chunk's events (`transform.to_events`)."""
    return content_hashes(to_events(frame))


def read_manifest(path: Location) -> Manifest | None:
    data = store.read_bytes(path)
    if data is None:
        return None
    table = pq.read_table(pa.BufferReader(data))
    etag = (table.schema.metadata or {}).get(_ETAG, b"").decode()
    ids = table.column("record_id").to_pylist()
    types = table.column("event_type").to_pylist()
    hashes = table.column("h").to_pylist()
    return Manifest(etag, {i: (t, int(h)) for i, t, h in zip(ids, types, hashes, strict=True)})


def write_manifest(path: Location, manifest: Manifest) -> None:
    ids = list(manifest.entries)
    table = pa.table({
        "record_id": pa.array(ids, type=pa.string()),
        "event_type": pa.array([manifest.entries[i][0] for i in ids], type=pa.string()),
        "h": pa.array([manifest.entries[i][1] for i in ids], type=pa.uint64()),
    }).replace_schema_metadata({_ETAG: manifest.etag.encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    store.write_bytes(path, sink.getvalue().to_pybytes())
