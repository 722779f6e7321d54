"""Benchmark: where to add a service — gridcover's maximal covering against PySAL spopt's MCLP.

Both get the same demand points (with weights), candidate sites, distances and service radius, and choose
p sites covering the most demand weight. spopt builds its model with PuLP and solves it with CBC (the two
times are printed apart, and gridcover's coverage matrix apart from its solve);
gridcover solves the same problem with scipy's milp (HiGHS) when it is small and greedily (with a bound)
when it is large. The script prints both times, the covered weight of each and the ratio (goal: gridcover
≥ 20× faster at equal or better coverage). spopt and pulp are installed for this benchmark only
(``pip install spopt pulp``; BSD-3 and MIT), never a gridcover dependency. Never run in CI.

Sizes: the issue's 2,000 demand points × 200 candidates with p = 10, and 10,000 × 500 (spopt is given
``--spopt-timeout`` seconds, 600 by default, and reported as unfinished past that).

Example
-------
    pip install spopt pulp
    python bench/bench_sites.py
    python bench/bench_sites.py --sizes 2000x200 --spopt-timeout 120
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo.siting import solve_max_cover  # noqa: E402


def make_problem(n_demand: int, n_cand: int, *, seed: int = 0, side: float = 5000.0):
    """Clustered demand in a 5 km square (a city has dense and sparse parts), candidates anywhere."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, side, (12, 2))
    which = rng.integers(0, 12, n_demand)
    demand = np.clip(centres[which] + rng.normal(0, 500, (n_demand, 2)), 0, side)
    weights = rng.integers(1, 6, n_demand).astype(float)  # households (with special groups weighted) per point
    cands = rng.uniform(0, side, (n_cand, 2))
    cost = np.hypot(demand[:, None, 0] - cands[None, :, 0], demand[:, None, 1] - cands[None, :, 1])
    return demand, cands, weights, cost


def _spopt_worker(cost, weights, radius, p, queue):
    from spopt.locate import MCLP
    import pulp

    t0 = time.perf_counter()
    model = MCLP.from_cost_matrix(cost, weights, service_radius=radius, p_facilities=p)
    built = time.perf_counter() - t0
    model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    solved = time.perf_counter() - t0 - built
    chosen = [j for j in range(cost.shape[1]) if model.fac2cli[j]]
    queue.put(((built, solved), chosen))


def run_spopt(cost, weights, radius, p, timeout):
    queue = mp.Queue()
    proc = mp.Process(target=_spopt_worker, args=(cost, weights, radius, p, queue))
    t0 = time.perf_counter()
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return None, None, time.perf_counter() - t0
    if queue.empty():
        return None, None, time.perf_counter() - t0
    seconds, chosen = queue.get()
    return seconds, chosen, None


def covered_weight(cost, weights, radius, chosen) -> float:
    if not chosen:
        return 0.0
    return float(weights[(cost[:, chosen] <= radius).any(axis=1)].sum())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000x200,10000x500", help="demand x candidates, comma-separated")
    parser.add_argument("--p", type=int, default=10)
    parser.add_argument("--radius", type=float, default=500.0, help="service radius (m): a 10-minute tier is ~500 m")
    parser.add_argument("--spopt-timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    for size in args.sizes.split(","):
        n_d, n_c = (int(v) for v in size.lower().split("x"))
        demand, cands, weights, cost = make_problem(n_d, n_c)
        t0 = time.perf_counter()
        rows, cols = np.nonzero(cost.T <= args.radius)
        cover = sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(n_c, n_d))
        gc_built = time.perf_counter() - t0
        plan = solve_max_cover(cover, weights, args.p)
        t_gc = time.perf_counter() - t0
        w_gc = covered_weight(cost, weights, args.radius, list(plan.sites))
        print(f"{n_d:,} demand x {n_c:,} candidates, p = {args.p}, radius {args.radius:.0f} m, total weight {weights.sum():,.0f}")
        print(f"  gridcover ({plan.method}): {t_gc:.3f} s (coverage matrix {gc_built:.3f} s, solve {t_gc - gc_built:.3f} s), "
              f"covered weight {w_gc:,.0f} (bound {plan.upper_bound:,.0f})")
        try:
            import spopt  # noqa: F401
        except ImportError:
            print("  spopt is not installed (pip install spopt pulp): no comparison")
            continue
        t_sp, chosen, waited = run_spopt(cost, weights, args.radius, args.p, args.spopt_timeout)
        if t_sp is None:
            print(f"  spopt MCLP (CBC): no answer after {waited:.0f} s (time limit; building and solving together)")
            print(f"  ratio: > {waited / t_gc:,.0f}x (spopt unfinished)")
            continue
        w_sp = covered_weight(cost, weights, args.radius, chosen)
        sp_built, sp_solved = t_sp
        t_sp = sp_built + sp_solved
        ratio = t_sp / t_gc
        verdict = "goal met" if ratio >= 20 and w_gc >= w_sp - 1e-9 else "BELOW the goal (>= 20x at equal or better coverage)"
        print(f"  spopt MCLP (CBC): {t_sp:.3f} s (model built with PuLP {sp_built:.3f} s, solved {sp_solved:.3f} s: "
              f"the LP written out, CBC, the answer read back), covered weight {w_sp:,.0f}")
        print(f"  solve alone (spopt / gridcover): {sp_solved / max(t_gc - gc_built, 1e-9):,.1f}x; "
              f"building alone: {sp_built / max(gc_built, 1e-9):,.1f}x")
        print(f"  ratio (spopt / gridcover, whole): {ratio:,.1f}x; coverage {'equal or better' if w_gc >= w_sp - 1e-9 else 'WORSE'} "
              f"({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
