"""The day's objects read by worker processes (`tuning.processes`): the same events at Hyperline as in
one process, credentials handed over from the task, lean workers, and a worker killed mid-object.

The rest of the sync's behaviour with workers (resume, dry runs, dead letters, corrections) is covered
by running tests/hyperline_sync/pipeline, tests/faults and tests/dags as they are: `processes`
defaults to the cores the tests may use (2 here; `HYPERLINE_TEST_CPUS=1` runs them in one process).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from hyperline_devtools.emulator import Emulator
from hyperline_devtools.sample_archive import SampleManifest
from hyperline_sync.config.models import PipelineConfig, S3ArchiveSourceConfig, TuningConfig
from hyperline_sync.orchestration.sender import make_sender
from hyperline_sync.pipeline.sync import PartitionFailedError, SyncJob, sync_partition
from hyperline_sync.pipeline.unit_worker import KILL_ON_ENV
from hyperline_sync.sources.archive.store import s3_client_settings
from hyperline_sync.sources.base import ArchiveSource
from hyperline_sync.state.deadletter import read_dead_letters
from hyperline_sync.state.ledger import Counts, Ledger
from tests.conftest import REPO
from tests.hyperline_sync.conftest import HYPERLINE_CONN_ID


def in_archive(key: str) -> str:
    """A key from `segment-logs/` on: the same object on disk and under the bucket's prefix."""
    return key[key.index("segment-logs/"):]


def sync_days(source: S3ArchiveSourceConfig, days: list, state: Path, processes: int) -> dict[str, Any]:
    """Every day in turn through the real sync and hook; what the run counted, dead-lettered and recorded."""
    config = PipelineConfig(name="pool", source=source, hyperline_conn_id=HYPERLINE_CONN_ID,
                            tuning=TuningConfig(chunk_size=211, batch_size=100, processes=processes))
    ledger, run_id = Ledger.sqlite(state / "ledger.db"), f"it-{uuid.uuid4().hex[:8]}"
    job = SyncJob(pipeline=config, ledger=ledger, source=ArchiveSource(config), state_dir=state,
                  output_dir=state / "out", run_id=run_id, owner=run_id, sender=make_sender(config))
    counts, letters, failures = Counts(), [], []
    for day in days:
        try:
            outcome = sync_partition(job, day)
        except PartitionFailedError as exc:
            assert exc.partition_outcome is not None
            outcome = exc.partition_outcome
            failures.append(outcome.error)
        counts.add(outcome.counts)
        letters += [{k: in_archive(v) if k == "source_key" else v for k, v in row.items() if k != "run_id"}
                    for path in outcome.dead_letters for row in read_dead_letters(Path(path))]
    objects = {in_archive(row["key"]): (row["status"], row["read"], row["sent"], row["rejected"], row["skipped"],
                                        row["duplicates"])
               for day in days for row in ledger.objects("pool", day.isoformat())}
    return {"counts": counts, "letters": letters, "objects": objects, "failures": failures}


@pytest.mark.parametrize("where", ["file", "s3"])
def test_workers_post_what_one_process_posts(emulator: Emulator, sample_archive: SampleManifest, sample_source,
                                             request, tmp_path, where: str) -> None:
    """The nasty sample archive (duplicates within and across days, rejects, decoys), 3 objects a day:
    the same events reach Hyperline (each as often), with the same counts and dead letters."""
    one = sync_days(sample_source, sample_archive.days, tmp_path / "one", processes=1)
    posted_by_one = (emulator.events, emulator.post_counts)
    emulator.reset()
    source = request.getfixturevalue("s3_sample_source") if where == "s3" else sample_source
    pooled = sync_days(source, sample_archive.days, tmp_path / "pooled", processes=3)

    assert (emulator.events, emulator.post_counts) == posted_by_one
    assert pooled == one
    assert one["counts"].balanced and one["counts"].duplicates > 0 and one["counts"].rejected > 0
    assert len(posted_by_one[0]) == one["counts"].sent


def test_a_killed_worker_fails_its_object_and_a_rerun_syncs_it(
        emulator: Emulator, sample_archive: SampleManifest, sample_source, tmp_path, monkeypatch) -> None:
    day = sample_archive.days[0]
    victim = sorted(key for key, on in sample_archive.object_days.items() if on == day)[1]
    clean = sync_days(sample_source, [day], tmp_path / "clean", processes=1)
    clean_events = emulator.events
    emulator.reset()

    monkeypatch.setenv(KILL_ON_ENV, victim.rsplit("/", 1)[-1])
    killed = sync_days(sample_source, [day], tmp_path / "state", processes=2)

    [failure] = killed["failures"]
    assert victim in failure and "killed by SIGKILL" in failure
    assert killed["counts"].balanced and 0 < killed["counts"].read < clean["counts"].read
    assert killed["objects"][victim][0] == "failed"
    assert all(status == "done" for key, (status, *_) in killed["objects"].items() if key != victim)

    monkeypatch.delenv(KILL_ON_ENV)
    rerun = sync_days(sample_source, [day], tmp_path / "state", processes=2)

    assert not rerun["failures"] and rerun["objects"] == clean["objects"]
    assert emulator.events == clean_events  # the victim's first chunk was resumed, not posted twice
    assert sum(emulator.post_counts.values()) == len(clean_events)
    assert killed["counts"].read + rerun["counts"].read == clean["counts"].read


def test_the_worker_imports_no_airflow(aws_conn_id: str) -> None:
    code = ("import sys, hyperline_sync.pipeline.unit_worker\n"
            "from hyperline_sync.sources.archive.store import S3ClientSettings\n"
            "S3ClientSettings('http://127.0.0.1:1', 'us-east-1', None, None, 'a', 'b').client()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": f"{REPO / 'include'}", "PATH": ""})
    assert done.stdout.strip() == "[]"


def test_the_handed_over_credentials_stay_out_of_its_repr(aws_conn_id: str) -> None:
    settings = s3_client_settings(aws_conn_id)

    assert (settings.access_key, settings.secret_key) == ("testing", "testing")
    assert "testing" not in repr(settings) and str(settings.endpoint_url).startswith("http://127.0.0.1")
