"""Worker processes that read a partition's archive objects ahead of the sync (`tuning.processes`).

Reading, gunzipping, decoding and transforming take most of a sync's CPU; each worker process
(`unit_worker`) does that for one object at a time, while the sync's own process keeps everything
that must happen in order or once: the messageId dedup in the objects' order (the first copy wins),
sending, checkpoints, dead letters and the ledger. The sync takes the objects in the order it was
given them; the workers hold the next ones, at most two chunks ahead each, so memory stays flat
whatever the day's size.

Workers are fresh interpreters (`python -m`, like multiprocessing's "spawn" but without re-running
the parent's `__main__`, which in a task is Airflow's CLI), so they work the same under any executor
and import no Airflow. They cannot reach Airflow's connections, so the task resolves the archive's S3
settings and credentials (`ArchiveSource.handover`) and hands them over the pipe: never in argv,
the environment or a log. A worker that dies (OOM kill, a signal) fails its object with a
`UnitReadError` naming it, as an unreadable object does, and is replaced for the next objects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from hyperline_sync.pipeline.transform import ChunkResult
from hyperline_sync.sources.base import ArchiveReader, Unit
from hyperline_sync.sources.errors import UnitReadError

log = logging.getLogger(__name__)

__all__ = ["UnitPool", "WorkerFailedError"]

_STOP_SECONDS = 10  # an idle worker exits at once when its pipe closes; one mid-object is killed


class WorkerFailedError(RuntimeError):
    """A worker raised something other than a `UnitReadError` (a bug): the sync stops, as it would in one process."""


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    to_worker: Connection
    from_worker: Connection
    unit: Unit | None = None  # the object it reads


class UnitPool:
    """`processes` workers over `units`; `chunks(unit, ...)` must be called in the order of `units`.
    With `hash_content`, the workers also compute the chunks' `content_hashes` (corrections on)."""

    def __init__(self, reader: ArchiveReader, units: Sequence[Unit], processes: int, chunk_size: int,
                 hash_content: bool = False) -> None:
        self.reader, self.chunk_size, self.hash_content = reader, chunk_size, hash_content
        self.waiting: deque[Unit] = deque(units)
        self.reading: dict[str, _Worker] = {}
        self.workers: list[_Worker] = []
        self.closed = False
        try:
            for _ in range(min(processes, len(units))):
                self._assign(self._start())
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> UnitPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def chunks(self, unit: Unit, chunk_size: int) -> Iterator[ChunkResult]:
        """The unit's transformed chunks, read by its worker; `UnitReadError` if it is unreadable or
        its worker died."""
        if chunk_size != self.chunk_size:
            raise ValueError(f"the pool reads chunks of {self.chunk_size} lines, not {chunk_size}")
        worker = self.reading.pop(unit.key)
        finished = False
        try:
            while True:
                try:
                    kind, payload = worker.from_worker.recv()
                except (EOFError, OSError):
                    raise UnitReadError(unit.key, self._death(worker)) from None
                if kind == "chunk":
                    yield payload
                    continue
                finished = True
                if kind == "end":
                    return
                if kind == "unreadable":
                    error, key, reason = payload
                    raise error(key, reason)
                raise WorkerFailedError(f"the worker reading {unit.key} failed:\n{payload}")
        finally:
            self._release(worker, finished)

    def close(self) -> None:
        self.closed = True
        for worker in self.workers:
            self._stop(worker)
        self.workers.clear()

    def _release(self, worker: _Worker, finished: bool) -> None:
        """A worker done with its unit reads the next one; one that died, or whose unit the sync gave
        up mid-way (the rest of its stream is not wanted), is replaced."""
        if self.closed:  # the sync stopped: close() stopped every worker
            return
        if finished:
            worker.unit = None
            self._assign(worker)
            return
        self._stop(worker)
        self.workers.remove(worker)
        if self.waiting:
            self._assign(self._start())

    def _start(self) -> _Worker:
        to_child, to_worker = os.pipe()
        from_worker, from_child = os.pipe()
        # The worker finds the same modules as this process (a task's sys.path has the DAG folder,
        # plugins and include/ in it, not necessarily in PYTHONPATH).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "hyperline_sync.pipeline.unit_worker", str(to_child), str(from_child)],
                pass_fds=(to_child, from_child), env=env, stdin=subprocess.DEVNULL)
        finally:
            os.close(to_child)
            os.close(from_child)
        worker = _Worker(process, Connection(to_worker, readable=False), Connection(from_worker, writable=False))
        self.workers.append(worker)
        with contextlib.suppress(OSError):  # a worker dead at birth is found when its chunks are read
            worker.to_worker.send(self.reader)
        return worker

    def _assign(self, worker: _Worker) -> None:
        if not self.waiting:
            return
        worker.unit = self.waiting.popleft()
        self.reading[worker.unit.key] = worker
        with contextlib.suppress(OSError):
            worker.to_worker.send((worker.unit, self.chunk_size, self.hash_content))

    def _death(self, worker: _Worker) -> str:
        code = _wait(worker.process, _STOP_SECONDS)
        if code is None:
            return f"worker process {worker.process.pid} stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            return f"worker process {worker.process.pid} was killed by {name}{hint}"
        return f"worker process {worker.process.pid} exited with code {code}"

    @staticmethod
    def _stop(worker: _Worker) -> None:
        worker.to_worker.close()
        worker.from_worker.close()
        if worker.unit is not None and worker.process.poll() is None:
            worker.process.kill()  # mid-object: it would only finish reading what nobody wants
        if _wait(worker.process, _STOP_SECONDS) is None:
            worker.process.kill()
            worker.process.wait()


def _wait(process: subprocess.Popen[Any], seconds: float) -> int | None:
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None
