"""A wrong url or source id fails the partition naming where it looked, on S3 (moto's server) as on
disk; a quiet day of a source that exists still syncs as an empty success."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hyperline_devtools.sample_archive import SampleManifest
from hyperline_sync.config.models import S3ArchiveSourceConfig
from hyperline_sync.sources.archive.store import ArchiveReadError
from hyperline_sync.state.ledger import DONE, FAILED, Ledger
from tests.hyperline_sync.conftest import SAMPLE_BUCKET, SAMPLE_PREFIX

RunPartition = Callable[..., Any]  # the `run_partition` fixture (tests/hyperline_sync/conftest.py)


@pytest.mark.parametrize(
    ("url", "source_id", "looked_in"),
    [
        (f"s3://{SAMPLE_BUCKET}/acme", None, "acme/segment-logs/{id}/"),  # a prefix cut short
        (f"s3://{SAMPLE_BUCKET}/{SAMPLE_PREFIX}/segment-logs", None,
         f"{SAMPLE_PREFIX}/segment-logs/segment-logs/{{id}}/"),
        (f"s3://{SAMPLE_BUCKET}/{SAMPLE_PREFIX}", "wrongSrc01", f"{SAMPLE_PREFIX}/segment-logs/{{id}}/"),
    ],
    ids=["short-prefix", "url-ends-at-segment-logs", "wrong-source-id"],
)
def test_a_wrong_url_or_source_id_fails_the_partition_naming_where_it_looked(
    s3_sample_source: S3ArchiveSourceConfig, sample_archive: SampleManifest, run_partition: RunPartition,
    tmp_path: Path, url: str, source_id: str | None, looked_in: str,
) -> None:
    source_id = source_id or sample_archive.source_id
    source = S3ArchiveSourceConfig(url=url, source_id=source_id, aws_conn_id=s3_sample_source.aws_conn_id)
    day = sample_archive.days[0]
    where = f"s3://{SAMPLE_BUCKET}/{looked_in.format(id=source_id)}"
    with pytest.raises(ArchiveReadError) as caught:
        run_partition(source, day, tmp_path)
    assert str(caught.value) == f"{where}: no day folders of source {source_id!r}: check source.url and " \
                                "source.source_id"
    state = Ledger.sqlite(tmp_path / "ledger.db").partitions("it")[day.isoformat()]
    assert state.status == FAILED and where in state.last_error


def test_a_quiet_day_of_an_existing_source_is_an_empty_success(
    s3_sample_source: S3ArchiveSourceConfig, run_partition: RunPartition, tmp_path: Path
) -> None:
    quiet = date(2026, 2, 1)  # the source has day folders, not this one
    result = run_partition(s3_sample_source, quiet, tmp_path)
    assert (result.read, result.events) == (0, 0)
    assert Ledger.sqlite(tmp_path / "ledger.db").partitions("it")[quiet.isoformat()].status == DONE
