"""geo.regions: the exact division of a unit graph into the most contiguous regions in a band, checked against
brute force on graphs small enough to try every division."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from geo.regions import absorb_empty, connected_sets, exact_regions, improve_regions, region_bound


def lattice(rows: int, cols: int) -> np.ndarray:
    """Pairs of a rows × cols lattice of units (4-neighbours)."""
    idx = np.arange(rows * cols).reshape(rows, cols)
    return np.r_[np.column_stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()]),
                 np.column_stack([idx[:-1, :].ravel(), idx[1:, :].ravel()])]


def is_connected(units, pairs) -> bool:
    units = list(units)
    if len(units) <= 1:
        return True
    pos = {u: i for i, u in enumerate(units)}
    keep = [(pos[a], pos[b]) for a, b in pairs if a in pos and b in pos]
    if not keep:
        return False
    a, b = zip(*keep)
    m = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(len(units), len(units)))
    return connected_components(m, directed=False)[0] == 1


def partitions(items):
    """Every set partition of ``items`` (Bell-number many: keep ``items`` small)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]
        yield [[first]] + part


def brute_force(w, pairs, band) -> int:
    """The most regions in the band over every division into connected regions (-1 when none has all in band)."""
    best = -1
    for part in partitions(list(range(len(w)))):
        if all(is_connected(p, pairs) and band[0] <= sum(w[u] for u in p) <= band[1] for p in part):
            best = max(best, len(part))
    return best


def test_every_connected_set_within_the_band_is_listed_once():
    rng = np.random.default_rng(3)
    pairs = lattice(3, 3)
    w = rng.integers(20, 120, 9)
    found = connected_sets(w, pairs, band=(150, 300))
    assert len(found) == len(set(found))
    expected = sorted(s for k in range(1, 10) for s in itertools.combinations(range(9), k)
                      if 150 <= w[list(s)].sum() <= 300 and is_connected(s, pairs))
    assert found == expected


def test_too_many_sets_is_said_not_guessed():
    assert connected_sets(np.ones(36, dtype=int), lattice(6, 6), band=(10, 20), max_steps=1000) is None
    assert exact_regions(np.ones(36, dtype=int), lattice(6, 6), band=(10, 20), max_steps=1000) is None


@pytest.mark.parametrize("seed", range(6))
def test_the_program_finds_the_brute_force_optimum_and_connected_regions_in_the_band(seed):
    rng = np.random.default_rng(seed)
    pairs = lattice(2, 4)
    w = rng.integers(30, 160, 8)
    band = (150, 300)
    solved = exact_regions(w, pairs, band=band, x=rng.random(8), y=rng.random(8))
    best = brute_force(w, pairs, band)
    if best < 0:  # no division puts every region in the band: the program says so rather than inventing one
        assert not solved.feasible and (solved.labels == -1).all()
        return
    assert solved.optimal and solved.count == best == len(np.unique(solved.labels))
    totals = np.bincount(solved.labels, weights=w)
    assert ((totals >= band[0]) & (totals <= band[1])).all()
    assert all(is_connected(np.flatnonzero(solved.labels == r), pairs) for r in np.unique(solved.labels))
    assert region_bound(w, band=band) >= best


def test_a_unit_above_the_ceiling_stands_alone_and_does_not_count():
    w = np.array([400, 100, 100, 100])
    solved = exact_regions(w, [[0, 1], [1, 2], [2, 3]], band=(150, 300))
    assert solved.labels.tolist() == [0, 1, 1, 1]
    assert solved.count == 1


def test_empty_units_join_a_touching_unit_and_change_no_total():
    w = np.array([100, 0, 0, 100, 0, 100, 100])
    pairs = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6]]
    assert absorb_empty(w, pairs).tolist() == [0, 0, 0, 1, 1, 2, 3]
    solved = exact_regions(w, pairs, band=(150, 300))
    assert solved.count == 2
    assert all(is_connected(np.flatnonzero(solved.labels == r), pairs) for r in np.unique(solved.labels))


def test_a_piece_of_the_graph_below_the_floor_is_one_region_of_its_own():
    w = np.array([100, 100, 100, 40, 30])
    solved = exact_regions(w, [[0, 1], [1, 2], [3, 4]], band=(150, 300))
    assert solved.labels[3] == solved.labels[4]
    assert len(np.unique(solved.labels)) == 2 and solved.count == 1


def test_no_division_in_the_band_is_said_when_a_small_unit_has_only_full_neighbours():
    solved = exact_regions([280, 40, 290], [[0, 1], [1, 2]], band=(150, 300))
    assert not solved.feasible and solved.count == 0 and (solved.labels == -1).all()


def test_the_bound_without_contiguity_counts_pairs_of_small_units():
    assert region_bound([100] * 10, band=(150, 300)) == 5       # 1,000 households // 150 would say 6
    assert region_bound([200, 100, 100], band=(150, 300)) == 2


def test_the_local_search_never_loses_a_region_in_the_band_and_keeps_regions_connected():
    rng = np.random.default_rng(7)
    pairs = lattice(6, 6)
    w = rng.integers(10, 90, 36)
    start = np.repeat(np.arange(6), 6)  # the rows: 6 regions, some outside the band
    band = (150, 300)
    before = np.bincount(start, weights=w)
    x, y = np.meshgrid(np.arange(6.0), np.arange(6.0))
    out = improve_regions(start, w, pairs, band=band, x=y.ravel(), y=x.ravel())
    after = np.bincount(out, weights=w)
    assert ((after >= band[0]) & (after <= band[1])).sum() >= ((before >= band[0]) & (before <= band[1])).sum()
    assert all(is_connected(np.flatnonzero(out == r), pairs) for r in np.unique(out))
