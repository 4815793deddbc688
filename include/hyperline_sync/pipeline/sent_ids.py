"""Every message id the pipeline's state says was sent, from any received day: the ids the
reconcile does not call `unexpected` although the range it checks does not send them (an event
received after the range with a timestamp inside it). Read from the dedup's id files and the
`.acked` files of units in progress (`dedup`, `state.checkpoint`); days pruned by
`tuning.state_retention_days` are no longer known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from hyperline_sync.pipeline.dedup import hash_ids, ids_root
from hyperline_sync.state.checkpoint import read_acked


class SentIds:
    """Membership of message ids in the pipeline's id files, as 64-bit hashes (see `dedup`)."""

    def __init__(self, state_dir: Path, pipeline: str) -> None:
        root = ids_root(Path(state_dir), pipeline)
        parts = [hash_ids(pq.read_table(p, columns=["message_id"]).column("message_id").to_numpy(zero_copy_only=False)
                          .astype(object)) for p in sorted(root.glob("*/*.parquet"))]
        parts += [hash_ids(read_acked(p)) for p in sorted(root.glob("*/*.acked"))]
        self._hashes = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)

    def __contains__(self, record_id: object) -> bool:
        if not isinstance(record_id, str) or not self._hashes.size:
            return False
        value = hash_ids([record_id])[0]
        at = int(np.searchsorted(self._hashes, value))
        return at < self._hashes.size and self._hashes[at] == value
