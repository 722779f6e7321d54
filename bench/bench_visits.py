"""Benchmark: evaluating 12 weeks of visit records for a city against a plain pandas groupby.

Generates (in memory, deterministic from ``--seed``) ``--households`` households (30% elderly living alone,
10% with a child in difficulty, 5% with a person with a severe mental disorder, drawn independently, so
some households are in two groups) and about ``--visits`` visit rows over the 12 weeks before ``AS_OF``
(84% home visits, 13% phone calls, 3% other; 3% of the special-group households never visited; each
visit at a time of day between 07:00 and 23:59), then times

(a) gridcover: ``geo.visits.evaluate_visits(households, visits, rules=…, as_of=AS_OF)`` on the frame
    ``validate_visits`` returned (the check itself is timed apart, once);
(b) pandas: per rule, the visits of the members filtered by kind and window, their ``Period``
    (``W-SUN`` or ``M``), ``groupby([household_id, period]).size()`` reindexed on every member × period,
    then kept / done per household, ``groupby().max()`` for the last visit, ``isin`` for never visited
    (the peer gets the raw log: it needs no categorical ids);

then ``visits_due`` and ``order_visit_list`` for the Monday after (no peer), and checks that (a) and (b)
give every household and group the same ``periods``, ``periods_kept``, ``visits_done``, ``last_visit`` and
``never_visited``. A disagreement is printed and makes the exit status 1. The goal is
gridcover under 10 s for 1,000,000 households and ~5,000,000 visits. Never gates CI.

Example
-------
    python bench/bench_visits.py                                   # 1,000,000 households, ~5,000,000 visits
    python bench/bench_visits.py --households 20000 --visits 100000   # a quick run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo.visits import evaluate_visits, order_visit_list, parse_visit_rules, validate_visits, visits_due  # noqa: E402

AS_OF = "2026-11-29"  # a Sunday: the window holds exactly twelve ISO weeks
WINDOW_WEEKS = 12
GOAL_SECONDS = 10.0
RULES = parse_visit_rules({
    "elderly_alone": {"period": "iso_week", "at_least": 1},
    "child_in_difficulty": {"period": "month", "at_least": 2},
    "mental_disorder": {"period": "month", "at_least": 1, "kinds": ["home", "phone"]},
})
SHARES = {"elderly_alone": 0.30, "child_in_difficulty": 0.10, "mental_disorder": 0.05}


def make_city(households: int, visits: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Households with group flags and a visit log over the window (plus a week either side)."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("H", np.char.zfill(np.arange(households).astype(str), 7)).astype(object)
    frame = pd.DataFrame({"id": ids, **{g: rng.random(households) < s for g, s in SHARES.items()}})
    special = np.flatnonzero(frame[list(SHARES)].any(axis=1).to_numpy())
    visited = special[rng.random(len(special)) >= 0.03]
    # some households are visited often, some rarely (workers behind): a skewed choice of household
    weight = rng.gamma(2.0, 1.0, len(visited))
    who = visited[np.searchsorted(np.cumsum(weight) / weight.sum(), rng.random(visits))]
    first = np.datetime64(AS_OF, "s") - np.timedelta64((WINDOW_WEEKS * 7 + 6) * 86400, "s")
    offset = rng.integers(0, (WINDOW_WEEKS * 7 + 13) * 86400, visits)
    seconds = offset - offset % 86400 + 7 * 3600 + rng.integers(0, 17 * 3600, visits)
    kinds = np.array(["home", "phone", "other"], dtype=object)[
        np.searchsorted([0.84, 0.97], rng.random(visits), side="right")]
    log = pd.DataFrame({"household_id": ids[who], "visited_at": first + seconds.astype("timedelta64[s]"),
                        "worker": "W" + (who // 400).astype(str), "kind": kinds})
    return frame, log


def evaluate_with_groupby(households: pd.DataFrame, visits: pd.DataFrame) -> pd.DataFrame:
    """The plain pandas way, rule by rule (the peer)."""
    as_of = pd.Timestamp(AS_OF)
    start = as_of - pd.Timedelta(days=7 * WINDOW_WEEKS - 1)
    day = visits["visited_at"].dt.floor("D")
    upto = visits[day <= as_of].assign(day=day[day <= as_of])
    seen = set(upto["household_id"])
    out = []
    for group, rule in RULES.by_group.items():
        members = pd.Index(households.loc[households[group], "id"], name="household_id")
        freq = "W-SUN" if rule.period == "iso_week" else "M"
        periods = pd.period_range(start, as_of, freq=freq)
        periods = periods[(periods.start_time >= start) & (periods.end_time.normalize() <= as_of)]
        mine = upto[upto["household_id"].isin(members) & upto["kind"].isin(rule.kinds)]
        period = mine["day"].dt.to_period(freq)
        inside = mine[period.isin(periods)]
        counts = inside.groupby([inside["household_id"], period[period.isin(periods)]]).size()
        full = counts.reindex(pd.MultiIndex.from_product([members, periods]), fill_value=0)
        per_household = pd.DataFrame({
            "periods_kept": (full >= rule.at_least).groupby(level=0).sum(),
            "visits_done": full.clip(upper=rule.at_least).groupby(level=0).sum(),
        }).reindex(members, fill_value=0)
        per_household["periods"] = len(periods)
        per_household["last_visit"] = mine.groupby("household_id")["day"].max().reindex(members)
        per_household["never_visited"] = ~members.isin(list(seen))
        out.append(per_household.reset_index().assign(group=group))
    return pd.concat(out, ignore_index=True)


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> list[str]:
    """Differences between the two answers, keyed by household and group (empty: the same)."""
    cols = ["periods", "periods_kept", "visits_done", "last_visit", "never_visited"]
    a = ours.set_index(["household_id", "group"])[cols].sort_index()
    b = theirs.set_index(["household_id", "group"])[cols].sort_index()
    problems = []
    if not a.index.equals(b.index):
        problems.append(f"different rows: {len(a)} against {len(b)}")
        return problems
    b["last_visit"] = b["last_visit"].astype(a["last_visit"].dtype)
    for c in cols:
        differ = ~((a[c] == b[c]) | (a[c].isna() & b[c].isna()))
        if differ.any():
            problems.append(f"{c}: {int(differ.sum())} rows differ, e.g. {a[differ].head(3).index.tolist()}: "
                            f"{a.loc[differ, c].head(3).tolist()} against {b.loc[differ, c].head(3).tolist()}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--visits", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    t = time.perf_counter()
    households, log = make_city(args.households, args.visits, args.seed)
    print(f"synthetic city: {len(households):,} households "
          f"({int(households[list(SHARES)].any(axis=1).sum()):,} in a special group), {len(log):,} visit rows "
          f"({time.perf_counter() - t:.1f} s to generate)")

    t = time.perf_counter()
    check = validate_visits(log, households["id"])
    validate_s = time.perf_counter() - t
    print(f"validate_visits: {validate_s:.2f} s ({len(check.visits):,} rows kept, {len(check.rejects):,} rejected)")

    t = time.perf_counter()
    result = evaluate_visits(households, check.visits, rules=RULES, as_of=AS_OF, window_weeks=WINDOW_WEEKS)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    peer = evaluate_with_groupby(households, log)
    peer_s = time.perf_counter() - t

    goal = "within" if ours_s < GOAL_SECONDS else "OVER"
    print(f"evaluate_visits (gridcover): {ours_s:.2f} s for {len(result.by_group):,} household-group rows "
          f"({goal} the {GOAL_SECONDS:.0f} s goal)")
    print(f"pandas groupby (peer):       {peer_s:.2f} s")
    print(f"ratio: gridcover is {peer_s / ours_s:.1f}x faster than the groupby peer")
    kept = result.households
    print(f"periods kept: {kept['periods_kept'].sum() / kept['periods'].sum():.1%}; never visited: "
          f"{int(kept['never_visited'].sum()):,}; long visit gap (elderly): {int(kept['long_visit_gap'].sum()):,}")
    t = time.perf_counter()
    tasks = order_visit_list(visits_due(households, check.visits, rules=RULES, date="2026-11-30"))
    print(f"visits_due + order_visit_list for Monday 2026-11-30: {time.perf_counter() - t:.2f} s, "
          f"{len(tasks):,} rows ({int((tasks['state'] == 'overdue').sum()):,} overdue)")
    problems = compare(result.by_group, peer)
    if problems:
        print("DISAGREEMENT:\n  " + "\n  ".join(problems))
        return 1
    print("same answers: periods, periods_kept, visits_done, last_visit, never_visited for every household and group")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
