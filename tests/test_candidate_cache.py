"""The candidate matrices' cache is full within the warm-up (issue 10's soak).

Each matrix is ~150 kB on a 16x16 table and its key changes as the learned WOT MAP
and the logging rate settle; an LRU of 16 gained one every few minutes of an hour's
TUI run, a slow climb in memory after the warm-up.
"""

from __future__ import annotations

from core.coverage.axes import TableAxes
from core.plan import candidates
from core.plan.candidates import CANDIDATE_CACHE, Constraints, candidate_matrix


def test_candidate_matrices_kept_are_few_and_the_newest_is_reused() -> None:
    axes = TableAxes.default()
    candidates._cached_matrix.cache_clear()
    for i in range(CANDIDATE_CACHE + 6):
        candidate_matrix(axes, Constraints(), 95.0 + i, 100.0)  # a learned WOT MAP creeping up
    info = candidates._cached_matrix.cache_info()
    assert info.currsize <= CANDIDATE_CACHE <= 4
    specs, model, _ = candidate_matrix(axes, Constraints(), 95.0 + CANDIDATE_CACHE + 5, 100.0)
    assert candidates._cached_matrix.cache_info().hits == info.hits + 1
    assert model.shape == (len(specs), axes.n_cells)
