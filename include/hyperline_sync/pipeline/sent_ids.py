"""Every message id the pipeline's state says was sent, from any received day: the ids the
reconcile does not call `unexpected` although the range it checks does not send them (an event
received after the range with a timestamp inside it). Read from the dedup's id files and the
`.acked` files of units in progress (`dedup`, `state.checkpoint`); days pruned by
`tuning.state_retention_days` are no longer known.
"""

from __future__ import annotations

import numpy as np

from hyperline_sync.pipeline.dedup import hash_ids, id_files, ids_root, read_hashes
from hyperline_sync.state import store
from hyperline_sync.state.checkpoint import read_acked
from hyperline_sync.state.store import Location


class SentIds:
    """Membership of message ids in the pipeline's id files, as 64-bit hashes (see `dedup`)."""

    def __init__(self, state_dir: Location, pipeline: str) -> None:
        root = ids_root(state_dir, pipeline)
        files, logs = id_files(store.list_files(root, recursive=True))
        parts = [read_hashes(root / name) for name in files if name.count("/") == 1]  # <day>/<file>
        parts += [hash_ids(read_acked(root / name)) for name in logs if name.count("/") == 1]
        self._hashes = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)

    def __contains__(self, record_id: object) -> bool:
        if not isinstance(record_id, str) or not self._hashes.size:
            return False
        value = hash_ids([record_id])[0]
        at = int(np.searchsorted(self._hashes, value))
        return at < self._hashes.size and self._hashes[at] == value
