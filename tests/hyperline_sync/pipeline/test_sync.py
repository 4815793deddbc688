"""sync's process-level helper: the relaxed GC while a partition syncs (claim renewal: state/test_claims.py).

(The sync itself is tested end to end: tests/hyperline_sync/sources, tests/dags and tests/faults.)
"""

from __future__ import annotations

import gc

import pytest

from hyperline_sync.pipeline.sync import GC_YOUNG_THRESHOLD, _gc_relaxed


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_threshold_is_raised_inside_and_restored_after(thresholds) -> None:
    with _gc_relaxed():
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_it_is_restored_after_an_error_and_never_lowered(thresholds) -> None:
    gc.set_threshold(GC_YOUNG_THRESHOLD * 2, 5, 5)
    with pytest.raises(RuntimeError), _gc_relaxed():
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD * 2, 5, 5)
        raise RuntimeError("boom")
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD * 2, 5, 5)
