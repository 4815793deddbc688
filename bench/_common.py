"""Helpers shared by the scripts under bench/: generated archives, the emulator process, measuring.

Not a benchmark itself. The scripts run as `python bench/<script>.py`, so bench/ is on sys.path and
they import this module as `_common`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / "data"
SOURCE_ID = "benchSrc01"
DAY = date(2026, 1, 5)
LINES_PER_OBJECT = 100_000
EMULATOR_KEY = "test_bench"


# --- archives -------------------------------------------------------------------------------------


def archive_for(lines: int, days: int = 1) -> Path:
    """The benchmark archive of `lines` lines over `days` received days from DAY, generated on first use
    (or when its recipe changed). No nasty cases: ~650-byte lines, the generator's realistic mix.
    """
    from hyperline_devtools.sample_archive import generate_archive

    per_day = math.ceil(lines / days)
    # Segment objects are capped (<= 100 MB), so a busier day means more objects, not bigger ones:
    # ~100k-line objects at every size keep the RSS comparison about the run, not the object.
    recipe: dict[str, Any] = {
        "lines": lines,
        "objects": max(1, per_day // LINES_PER_OBJECT),
        "seed": 1,
        "source_id": SOURCE_ID,
    }
    root = DATA / f"{lines}-lines"
    if days > 1:  # one-day archives keep the recipe bench_source.py has always written
        recipe["days"] = days
        root = DATA / f"{lines}-lines-{days}days"
    marker = root / ".recipe.json"
    if not marker.exists() or json.loads(marker.read_text()) != recipe:
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        generate_archive(
            root,
            SOURCE_ID,
            archive_days(days),
            per_day,
            seed=1,
            nasty=False,
            objects_per_day=recipe["objects"],
            keep_expected=False,
        )
        marker.write_text(json.dumps(recipe))
        print(f"generated {per_day * days} lines in {time.perf_counter() - started:.1f}s: {root}", file=sys.stderr)
    return root


def archive_days(days: int) -> list[date]:
    return [DAY + timedelta(days=i) for i in range(days)]


def gz_objects(root: Path) -> list[Path]:
    """Every archive object of the benchmark source, all days, in key order."""
    return sorted((root / "segment-logs" / SOURCE_ID).glob("*/*.gz"))


def write_config(path: Path, archive: Path, state_dir: Path, pipeline: str | list[str] = "bench",
                 tuning: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """A pipelines YAML reading `archive` (file://) with default mapping; `tuning` keys the config does
    not know (yet) are left out (`known_tuning`); `extra`: more keys of each pipeline (e.g. schedule).
    Several pipeline names: one pipeline each, over the same archive."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [pipeline] if isinstance(pipeline, str) else pipeline
    config = {
        "state": {"dir": str(state_dir)},
        "pipelines": [
            {
                "name": name,
                "source": {"kind": "s3_archive", "url": f"file://{archive}", "source_id": SOURCE_ID},
                "hyperline_conn_id": "hyperline_default",
                "tuning": known_tuning(tuning or {}),
                **(extra or {}),
            }
            for name in names
        ],
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def known_tuning(tuning: dict[str, Any]) -> dict[str, Any]:
    """The keys of `tuning` that the pipeline config accepts (it refuses unknown keys)."""
    from hyperline_sync.config.models import TuningConfig

    return {key: value for key, value in tuning.items() if key in TuningConfig.model_fields}


# --- the emulator, in its own process --------------------------------------------------------------


def read_and_dedup(source: Any, day: date, chunk_size: int) -> dict[str, int]:
    """The source path without HTTP, as sync_partition runs it: units -> transformed chunks -> dedup.

    `source` is any hyperline_sync PartitionSource (the archive or the warehouse); ids are committed
    per unit into a throwaway state dir, so dedup costs what it costs in a real run.
    """
    from hyperline_sync.pipeline.dedup import SeenIds

    totals = {"read": 0, "events": 0, "rejected": 0, "skipped": 0, "duplicates": 0, "units": 0}
    with tempfile.TemporaryDirectory() as state:
        seen = SeenIds(Path(state), "bench", day, 7)
        for unit in source.list_units(day):
            totals["units"] += 1
            delivered: list[str] = []
            for result in source.chunks(unit, chunk_size):
                fresh, duplicates = seen.filter(result.events)
                delivered.extend(fresh["message_id"].tolist())
                totals["read"] += result.read
                totals["events"] += len(fresh)
                totals["rejected"] += result.rejected
                totals["skipped"] += result.skipped
                totals["duplicates"] += duplicates
            seen.commit_object(unit.key, delivered)
    return totals


def start_emulator(api_key: str = EMULATOR_KEY, store: bool = True) -> tuple[subprocess.Popen[str], str]:
    """The Hyperline emulator in its own process on 127.0.0.1 and a free port; returns (process, url)."""
    program = ["-m", "hyperline_devtools.emulator"]
    options = ["--port", "0", "--api-key", api_key, *([] if store else ["--no-store"])]
    proc = subprocess.Popen([sys.executable, *program, *options], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, line[line.index("http://") :].split()[0]


def admin(url: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """The emulator's admin endpoints (/_emulator/stats, /reset, /faults)."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url + path, data=data, method="GET" if data is None else "POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def connection_env(url: str, api_key: str = EMULATOR_KEY, conn_id: str = "hyperline_default") -> dict[str, str]:
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps({"conn_type": "hyperline", "host": url, "password": api_key})}


# --- measuring ------------------------------------------------------------------------------------


def load1() -> float:
    return os.getloadavg()[0]


def _busy_cpu_seconds() -> float:
    t = psutil.cpu_times()
    return sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


def _children_cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # children that ended and were waited for
    return children.ru_utime + children.ru_stime


def _own_cpu_seconds(extra: list[psutil.Process]) -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    seconds = own.ru_utime + own.ru_stime + _children_cpu_seconds()
    for proc in extra:
        with contextlib.suppress(psutil.Error):
            seconds += sum(proc.cpu_times()[:2])
    return seconds


class Meter:
    """Wall time, 1-minute load average before/after, and the CPU other people's processes used meanwhile.

    `others_cores` = (machine's busy CPU - this process, its finished children and `extra` live processes)
    / wall: on this shared 2-core machine it says how much of it was not ours during the measurement.
    Start it right before the measured work and call `stop()` after every child was waited for.
    `children_cpu` is the CPU of the children (and their descendants) that ended meanwhile.
    """

    def __init__(self, extra: list[psutil.Process] | None = None) -> None:
        self.extra = extra or []
        self.load_before = load1()
        self._busy = _busy_cpu_seconds()
        self._own = _own_cpu_seconds(self.extra)
        self._children = _children_cpu_seconds()
        self._started = time.perf_counter()
        self.seconds = self.load_after = self.others_cores = self.children_cpu = math.nan

    def stop(self) -> Meter:
        self.seconds = time.perf_counter() - self._started
        busy = _busy_cpu_seconds() - self._busy
        own = _own_cpu_seconds(self.extra) - self._own
        self.others_cores = max(busy - own, 0.0) / self.seconds if self.seconds > 0 else math.nan
        self.children_cpu = _children_cpu_seconds() - self._children
        self.load_after = load1()
        return self

    def as_dict(self) -> dict[str, float]:
        return {
            "seconds": self.seconds,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "others_cores": self.others_cores,
            "children_cpu_seconds": self.children_cpu,
        }


class TreeRss:
    """Samples the RSS of a process and all its descendants every `interval` s, keeping the maxima.

    `peak_mb` is the largest sum over the tree at one sample, `peak_single_mb` the largest one process,
    `peak_root_mb` the process itself (the parent of a worker pool) and `peak_child_mb` the largest
    one of its descendants (a pool's worker); `max_processes` counts the tree, the root included.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_mb = self.peak_single_mb = self.peak_root_mb = self.peak_child_mb = 0.0
        self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        sizes = []
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                size = proc.memory_info().rss / 2**20
                sizes.append(size)
                if proc is self.root:
                    self.peak_root_mb = max(self.peak_root_mb, size)
                else:
                    self.peak_child_mb = max(self.peak_child_mb, size)
        if sizes:
            self.peak_mb = max(self.peak_mb, sum(sizes))
            self.peak_single_mb = max(self.peak_single_mb, max(sizes))
            self.max_processes = max(self.max_processes, len(sizes))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> TreeRss:
        self._stop.set()
        self._thread.join()
        return self


def peak_rss_mb() -> float:
    """This process's peak RSS so far, in MiB: VmHWM, the high-water mark of its own address space.

    Not ru_maxrss: Python starts children with vfork (or posix_spawn), and Linux then carries the
    parent's high-water mark into the child's ru_maxrss at exec, so a child of a big parent (say, one
    that just generated a 3M-line archive) reported the parent's peak, not its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# --- the machine ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("apache-airflow", "pandas", "pyarrow", "orjson", "msgspec", "isal", "requests", "psutil"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "physical_cpus": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
    }
