"""A worker process of `unit_pool`: reads, gunzips, decodes and transforms the archive objects its
parent assigns, one at a time, and streams their chunks back.

Started as `python -m hyperline_sync.pipeline.unit_worker <fd in> <fd out>` (a fresh interpreter: it
imports neither Airflow nor the parent's `__main__`). It receives an `ArchiveReader` first, then
`(unit, chunk_size, hash_content)` per object, and answers per chunk ("chunk", ChunkResult, with its
`content_hashes` for the corrections if `hash_content`), then ("end", None),
or ("unreadable", (error class, key, reason)) for a `UnitReadError`, or ("failed", traceback) for
anything else. A writer thread sends while the next chunk is transformed; its queue holds one chunk,
so the worker is at most two chunks ahead of its parent (one in the queue, one being written).
It exits when its parent closes the pipe.

`HYPERLINE_TEST_KILL_WORKER_ON` (tests only): a worker SIGKILLs itself once it has sent the first
chunk of an object whose key ends with this value, as the OOM killer would.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

from hyperline_sync.sources.base import ArchiveReader, archive_chunks
from hyperline_sync.sources.errors import UnitReadError
from hyperline_sync.state.sent_manifest import frame_hashes

KILL_ON_ENV = "HYPERLINE_TEST_KILL_WORKER_ON"


def _write(outgoing: queue.Queue[Any], outbox: Connection) -> None:
    while (message := outgoing.get()) is not None:
        try:
            outbox.send(message)
        except OSError:  # the parent is gone or gave the unit up
            os._exit(1)
        outgoing.task_done()


def serve(inbox: Connection, outbox: Connection) -> None:
    reader: ArchiveReader = inbox.recv()
    store = reader.open()
    kill_on = os.environ.get(KILL_ON_ENV)
    outgoing: queue.Queue[Any] = queue.Queue(maxsize=1)
    writer = threading.Thread(target=_write, args=(outgoing, outbox), name="unit-worker-send", daemon=True)
    writer.start()
    while True:
        try:
            unit, chunk_size, hash_content = inbox.recv()
        except EOFError:
            break
        try:
            for index, result in enumerate(archive_chunks(store, reader.mapping, unit, chunk_size)):
                if hash_content and not result.events.empty:
                    result.content_hashes = frame_hashes(result.events)
                outgoing.put(("chunk", result))
                if kill_on and index == 0 and unit.key.endswith(kill_on):
                    outgoing.join()  # sent: the parent syncs this chunk, then finds the worker dead
                    os.kill(os.getpid(), signal.SIGKILL)
            outgoing.put(("end", None))
        except UnitReadError as exc:
            outgoing.put(("unreadable", (type(exc), exc.key, exc.reason)))
        except Exception:
            outgoing.put(("failed", traceback.format_exc()))
    outgoing.put(None)
    writer.join()


def main(argv: list[str]) -> None:
    read_fd, write_fd = int(argv[0]), int(argv[1])
    # A stray print of a library must not land in the pipe: stdout goes to stderr.
    os.dup2(2, 1)
    serve(Connection(read_fd, writable=False), Connection(write_fd, readable=False))


if __name__ == "__main__":
    main(sys.argv[1:])
