"""The sample's twelve monthly snapshots: ``sample_geojson/scorecard_history.csv`` (docs/history.md).

Runs the real analysis of ``sample_geojson`` at the 11 month-ends before the sample's as-of date
(2025-12-31 … 2026-10-31) and writes their scorecards (and who was red, which grids were overloaded) as the
history CSV that ``gridcover analyze sample_geojson --out out/sample --as-of 2026-11-30`` carries forward, so
the report and the map show a twelve-month trend. Deterministic: the same files give the same CSV, byte for
byte (the runs' ``recorded`` time is the month-end itself).

The sample's visit log (``visits.csv``) starts on 2026-08-10, so for the runs the log is extended back over the
year in a scratch copy of the folder (the data folder is never written but for the CSV): the 16 weeks of the
log are repeated 1, 2 and 3 times 16 weeks earlier, a seeded share of each earlier copy dropped (25%, 15%, 8%
from the oldest: the workers were less diligent a year ago), so visits on time rise month by month. The
households, grids and facilities are one snapshot: coverage and service indicators stay flat; visits (and,
once the sample has cases, cases) move.

Usage (one command; rerun it when the scorecard's rows change, e.g. after the case loop lands)::

    PYTHONPATH=. python tools/sample_history.py            # writes sample_geojson/scorecard_history.csv
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_geojson"
AS_OF = date(2026, 11, 30)
#: Each earlier copy of the 16-week visit log: weeks back, share of its records dropped.
EARLIER_LOGS = ((16, 0.08), (32, 0.15), (48, 0.25))
SEED = 20261130


def month_ends(as_of: date = AS_OF, months: int = 11) -> list[date]:
    """The ``months`` month-ends before ``as_of``'s month, oldest first."""
    end = pd.Period(as_of, freq="M")
    return [(end - i).to_timestamp(how="end").date() for i in range(months, 0, -1)]


def extended_visits(visits: pd.DataFrame) -> pd.DataFrame:
    """The visit log with earlier copies of itself (:data:`EARLIER_LOGS`), seeded, sorted by time."""
    rng = np.random.default_rng(SEED)
    when = pd.to_datetime(visits["visited_at"], format="%Y-%m-%d %H:%M")
    parts = [visits]
    for weeks, dropped in EARLIER_LOGS:
        keep = rng.random(len(visits)) >= dropped
        earlier = visits[keep].copy()
        earlier["visited_at"] = (when[keep] - pd.Timedelta(weeks=weeks)).dt.strftime("%Y-%m-%d %H:%M")
        parts.append(earlier)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values("visited_at", kind="stable").reset_index(drop=True)


def build_history(sample: Path = SAMPLE, *, as_of: date = AS_OF, progress=print):
    """Run the analysis at each month-end on a scratch copy of ``sample`` with the extended log; returns the
    :class:`geo.history.History` of those runs."""
    from geo.history import History
    from gridcover.engines.single import analyze
    from gridcover.io.history import HISTORY_CSV, run_snapshot

    history = History.empty()
    with tempfile.TemporaryDirectory(prefix="gridcover-sample-history-") as scratch:
        data = Path(scratch) / "data"
        shutil.copytree(sample, data, ignore=shutil.ignore_patterns(HISTORY_CSV, "README.md"))
        visits = pd.read_csv(sample / "visits.csv", dtype=str, keep_default_na=False)
        extended_visits(visits).to_csv(data / "visits.csv", index=False)
        for day in month_ends(as_of):
            analysis = analyze(data, reference_date=day)
            snapshot = run_snapshot(analysis, as_of=day)
            snapshot.rows["recorded"] = f"{day.isoformat()}T23:59:59+08:00"
            history = history.merged(snapshot)
            red = int((snapshot.members["kind"] == "red_household").sum())
            progress(f"{day}: {len(snapshot.rows)} scorecard rows, {red} red households")
    return history


def main(argv: list[str] | None = None) -> int:
    from gridcover.io.history import HISTORY_CSV, export_history_csv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="the sample folder (default sample_geojson)")
    parser.add_argument("--out", type=Path, help=f"where to write the CSV (default SAMPLE/{HISTORY_CSV})")
    args = parser.parse_args(argv)
    history = build_history(args.sample)
    path = export_history_csv(history, args.out or args.sample / HISTORY_CSV)
    print(f"wrote {path}: {len(history.dates)} snapshots, {len(history.rows)} rows, {len(history.members)} ids")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
