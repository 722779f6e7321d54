"""The sample's case log (事件, ``sample_geojson/cases.csv``): a year of synthetic cases, deterministic.

    python -m tools.sample_cases --sample sample_geojson --seed 20261130

Run by :func:`tools.sample.build_sample` after the other layers (and alone, as above). Reads the sample's
households, buildings, grids and areas and writes, with ``gridcover.toml`` and its README section, about
3,300 cases from 2025-12-01 to 2026-11-30 (the sample's as-of date): mostly general requests from the 12345
hotline, some urgent ones (an elderly person living alone taken ill, a gas smell), some cross-department
matters; most handled in time, some late, a few still open and overdue at 2026-11-30, a few from the fringe
village that no grid covers. A case is placed by a point (GCJ-02, as the hotline's map gives it: the sample's
gridcover.toml says ``[crs] cases = "gcj02"``), by a household id, or by an address. Everything here is
fiction: no real person, case or time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import wgs84_to_gcj02

DEFAULT_SEED = 20261130
#: The log's first and last day (the sample's as_of, gridcover.toml [analysis]).
FIRST, LAST = pd.Timestamp("2025-12-01"), pd.Timestamp("2026-11-30")
#: Cases a year per household (a busy central street office: about one case a year for every nine homes).
CASES_PER_HOUSEHOLD = 0.11
URGENCY_SHARES = {"general": 0.86, "urgent": 0.04, "cross_department": 0.10}
CATEGORIES = {
    "general": ("噪音扰民", "环境卫生", "占道经营", "楼道杂物", "停车纠纷", "邻里纠纷", "公共设施报修", "宠物扰民"),
    "urgent": ("燃气异味", "老人走失", "高空坠物隐患", "突发疾病"),  # 独居老人突发疾病: planted with the household
    "cross_department": ("违章搭建", "房屋安全隐患", "消防通道堵塞", "污水管网堵塞", "电动车违规充电"),
}
SOURCES = {"general": (("12345", 0.8), ("网格巡查", 0.15), ("110", 0.05)),
           "urgent": (("12345", 0.4), ("110", 0.3), ("民政", 0.2), ("卫健", 0.1)),
           "cross_department": (("12345", 0.6), ("住建", 0.2), ("应急", 0.1), ("城管", 0.1))}
#: Chinese spellings some sources write the urgency in (the loader reads them).
CHINESE = {"general": "一般", "urgent": "紧急", "cross_department": "跨部门"}
#: Cases planted still open past their deadline at 2026-11-30 (urgent ones make their grid red).
OPEN_OVERDUE = {"general": 5, "urgent": 2, "cross_department": 4}
#: Cases planted from the fringe village outside every grid (placed by point).
OUTSIDE = 9


def _choice(rng, options, n):
    names = np.array([o for o, _ in options], dtype=object)
    return names[rng.choice(len(names), size=n, p=[p for _, p in options])]


def _places(sample: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Each household's id, address, building, elderly_alone flag and WGS-84 location (its point, else its
    building's inside point), and the inside points of the fringe village's buildings outside every grid."""
    hh = gpd.read_file(sample / "households.geojson")
    buildings = gpd.read_file(sample / "buildings.geojson")
    grids = gpd.read_file(sample / "grids.geojson")
    areas = gpd.read_file(sample / "areas.geojson")
    inner = pd.Series(shapely.point_on_surface(buildings.geometry.to_numpy()), index=buildings["id"])
    own = hh.geometry.to_numpy()
    has = ~(shapely.is_missing(own) | shapely.is_empty(own))
    of_b = inner.reindex(hh["building_id"].fillna("")).to_numpy()
    where = np.where(has, own, np.where(pd.isna(of_b), None, of_b))
    located = ~pd.isna(where)
    places = pd.DataFrame({"id": hh["id"], "address": hh["address"], "building_id": hh["building_id"],
                           "elderly_alone": hh["elderly_alone"].astype(bool), "lon": np.nan, "lat": np.nan})
    places.loc[located, "lon"] = shapely.get_x(where[located])
    places.loc[located, "lat"] = shapely.get_y(where[located])
    fringe = areas.loc[areas["kind"] == "urban_rural_fringe"].geometry.union_all()
    pts = inner.to_numpy()
    village = shapely.within(pts, fringe) & ~shapely.intersects(pts, grids.geometry.union_all())
    return places[located].reset_index(drop=True), pts[village]


def _times(rng, n: int, urgency: np.ndarray) -> pd.Series:
    """Report times over the year: hotline hours for most, any hour for urgent cases."""
    days = rng.integers(0, (LAST - FIRST).days + 1, n)
    minute = np.where(urgency == "urgent", rng.integers(0, 24 * 60, n), rng.integers(8 * 60, 21 * 60, n))
    return FIRST + pd.to_timedelta(days, unit="D") + pd.to_timedelta(minute, unit="m")


def _handling(rng, reported: pd.Series, urgency: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Acceptance and closure times: most within the limits (the workers' usual pace), some late."""
    n = len(reported)
    median_accept = np.select([urgency == "urgent", urgency == "cross_department"], [7.0, 50.0], 40.0)
    accept_min = np.round(rng.lognormal(np.log(median_accept), 0.6, n) + 1)
    accepted = reported + pd.to_timedelta(accept_min, unit="m")
    median_days = np.select([urgency == "urgent", urgency == "cross_department"], [0.15, 1.8], 1.2)
    close_days = rng.lognormal(np.log(median_days), 0.75, n)
    closed = accepted + pd.to_timedelta(close_days * 24 * 60, unit="m")
    # a settled case is reported back in office hours (urgent ones whenever they are settled)
    office = closed.dt.floor("D") + pd.to_timedelta(rng.integers(9 * 60, 18 * 60 + 30, n), unit="m")
    office = office.where(office > accepted, accepted + pd.Timedelta(minutes=30))
    closed = closed.where(urgency == "urgent", office)
    return accepted, closed


def build_cases(sample: Path, *, seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, dict]:
    """The case log and the facts the README states about it."""
    rng = np.random.default_rng(seed)
    places, village = _places(sample)
    n = int(round(len(places) * CASES_PER_HOUSEHOLD))
    urgency = np.array(list(URGENCY_SHARES), dtype=object)[rng.choice(3, size=n, p=list(URGENCY_SHARES.values()))]
    reported = pd.Series(_times(rng, n, urgency))
    order = np.argsort(reported.to_numpy(), kind="stable")
    reported, urgency = reported.iloc[order].reset_index(drop=True), urgency[order]
    accepted, closed = _handling(rng, reported, urgency)
    who = rng.integers(0, len(places), n)
    elderly = np.flatnonzero(places["elderly_alone"].to_numpy())
    ill = (urgency == "urgent") & (rng.random(n) < 0.6)  # an elderly person living alone taken ill
    who[ill] = elderly[rng.integers(0, len(elderly), int(ill.sum()))]
    category = np.array([CATEGORIES[u][i % len(CATEGORIES[u])] for u, i in zip(urgency, rng.integers(0, 60, n))],
                        dtype=object)
    category[ill] = "独居老人突发疾病"
    how = rng.choice(np.array(["point", "household", "address"], dtype=object), size=n, p=[0.35, 0.4, 0.25])
    how[ill] = "household"  # the civil-affairs or health office names the household
    end = LAST + pd.Timedelta(days=1)
    accepted = accepted.where(accepted < end)
    closed = closed.where(closed < end)
    stuck = _plant_open_overdue(rng, reported, urgency)
    accepted[stuck["unaccepted"]] = pd.NaT
    closed[stuck["all"]] = pd.NaT
    p = places.iloc[who].reset_index(drop=True)
    glon, glat = wgs84_to_gcj02(p["lon"].to_numpy() + rng.normal(0, 2e-5, n), p["lat"].to_numpy() + rng.normal(0, 2e-5, n))
    frame = pd.DataFrame({
        "id": [f"E{reported.iloc[i]:%y%m}-{i + 1:05d}" for i in range(n)],
        "reported_at": reported.dt.strftime("%Y-%m-%d %H:%M"),
        "urgency": urgency, "category": category,
        "source": [_choice(rng, SOURCES[u], 1)[0] for u in urgency],
        "household_id": np.where(how == "household", p["id"].to_numpy(), None),
        "address": np.where(how == "address", p["address"].to_numpy(), None),
        "lon": np.where(how == "point", np.round(glon, 7), np.nan),
        "lat": np.where(how == "point", np.round(glat, 7), np.nan),
        "accepted_at": accepted.dt.strftime("%Y-%m-%d %H:%M"), "closed_at": closed.dt.strftime("%Y-%m-%d %H:%M"),
    })
    frame = _plant_outside(rng, frame, village)
    chinese = frame["source"].isin(["民政", "卫健"]).to_numpy() | (rng.random(len(frame)) < 0.05)
    frame.loc[chinese, "urgency"] = frame.loc[chinese, "urgency"].map(CHINESE)
    facts = {"cases": len(frame), "by_urgency": {u: int((urgency == u).sum()) for u in URGENCY_SHARES},
             "by_location": {k: int((how == k).sum()) for k in ("point", "household", "address")},
             "ill": int(ill.sum()), "open_overdue": {u: len(v) for u, v in stuck["by_urgency"].items()},
             "outside": OUTSIDE, "chinese": int(chinese.sum()), "seed": seed}
    return frame, facts


def _plant_open_overdue(rng, reported: pd.Series, urgency: np.ndarray) -> dict:
    """Cases reported in November 2026 left open past their deadline: OPEN_OVERDUE of each urgency (urgent ones
    accepted but not closed: their closure day has passed; some general ones never accepted)."""
    late = (reported >= pd.Timestamp("2026-11-02")).to_numpy() & (reported < pd.Timestamp("2026-11-20")).to_numpy()
    picked, unaccepted, by = [], [], {}
    for u, k in OPEN_OVERDUE.items():
        pool = np.flatnonzero(late & (urgency == u))
        chosen = np.sort(rng.choice(pool, size=min(k, len(pool)), replace=False))
        by[u] = chosen
        picked += list(chosen)
        if u == "general":
            unaccepted += list(chosen[:2])
    return {"all": np.array(sorted(picked)), "unaccepted": np.array(sorted(unaccepted)), "by_urgency": by}


def _plant_outside(rng, frame: pd.DataFrame, village: np.ndarray) -> pd.DataFrame:
    """OUTSIDE general cases turned into reports from the fringe village's houses (GCJ-02 points, no grid)."""
    rows = np.sort(rng.choice(np.flatnonzero(frame["urgency"].eq("general").to_numpy()), OUTSIDE, replace=False))
    at = village[rng.integers(0, len(village), OUTSIDE)]
    lon, lat = wgs84_to_gcj02(shapely.get_x(at), shapely.get_y(at))
    frame.loc[rows, ["lon", "lat"]] = np.c_[np.round(lon, 7), np.round(lat, 7)]
    frame.loc[rows, ["household_id", "address"]] = None
    frame.loc[rows, "category"] = rng.choice(np.array(["环境卫生", "违章搭建", "邻里纠纷"], dtype=object), OUTSIDE)
    return frame


def readme_section(facts: dict, frame: pd.DataFrame) -> str:
    """The sample README's section on the case log (written between its heading and the next one)."""
    by = facts["by_urgency"]
    loc = {"point": int(frame["lon"].notna().sum()), "household": int(frame["household_id"].notna().sum()),
           "address": int(frame["address"].notna().sum())}
    late = facts["open_overdue"]
    return "\n".join([
        "## Case log (`cases.csv`)",
        "",
        f"- {facts['cases']:,} cases (事件, **synthetic**: no real case, person or time) from {FIRST.date()} to "
        f"{LAST.date()}, made by `python -m tools.sample_cases --sample sample_geojson --seed {facts['seed']}` "
        "(deterministic: the same sample and seed give the same file). Columns: `id`, `reported_at`, `urgency`, "
        "`category`, `source`, `household_id`, `address`, `lon`, `lat` (GCJ-02, as a hotline's map gives them: "
        "`gridcover.toml` says `[crs] cases = \"gcj02\"`), `accepted_at`, `closed_at` (local time, Asia/Shanghai).",
        f"- About one case a year for every nine households: {by['general']:,} general (mostly the 12345 hotline: "
        f"noise, litter, parking, repairs), {by['urgent']:,} urgent ({facts['ill']} of them an elderly person "
        f"living alone taken ill, named by household), {by['cross_department']:,} cross-department (illegal "
        f"building, unsafe housing, blocked fire lanes); {facts['chinese']} rows spell the urgency in Chinese "
        "(一般, 紧急, 跨部门).",
        f"- Placed by a point ({loc['point']:,}), by `household_id` ({loc['household']:,}) or by `address` "
        f"({loc['address']:,}).",
        "- Handled at the workers' usual pace: most within the limits (docs/cases.md), some late.",
        f"- **Planted**: {sum(late.values())} cases of November 2026 still open past their limit at 2026-11-30 "
        f"({late['general']} general, {late['urgent']} urgent, {late['cross_department']} cross-department; the "
        f"urgent ones make their grids red with `urgent_case_overdue`); {facts['outside']} reports from the fringe "
        "village's houses that no grid covers (`case_outside_grids`), beside the cases of households the gap and "
        "the village leave out.",
        "- `gridcover.toml` sets `[analysis] as_of = 2026-11-30`: `analyze` judges visits and cases at the end of "
        "that day unless `--as-of` says otherwise, so the figures here and in docs/cases.md do not change with "
        "the calendar. At the end of 2026-11-30 (measured by `analyze`; tests/test_cases.py checks them): 3,015 of 3,240 decided cases on time (93.1%), 11 open past a "
        "limit (2 urgent: grids `G01-13`, `G03-07` red), 91 outside every grid.",
        "",
    ])


#: The sample's gridcover.toml: its as-of date and the case log's coordinates.
GRIDCOVER_TOML = """\
# The sample's own settings (docs/data-model.md). The visit log ends 2026-11-29 and the case log 2026-11-30:
# `analyze` judges both at the end of 2026-11-30 unless --as-of says otherwise, so that README's figures
# stay the same whatever today's date.
[analysis]
as_of = 2026-11-30

[crs]
# the case log's points come from the hotline's map (Amap): GCJ-02 (docs/cases.md)
cases = "gcj02"
"""


def write_case_log(out_dir: Path, *, seed: int = DEFAULT_SEED) -> dict:
    """cases.csv, gridcover.toml and the README's case-log section and table row, into the sample folder
    ``out_dir`` (whose other layers :func:`tools.sample.build_sample` wrote); returns the facts."""
    out_dir = Path(out_dir)
    frame, facts = build_cases(out_dir, seed=seed)
    path = out_dir / "cases.csv"
    frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    (out_dir / "gridcover.toml").write_text(GRIDCOVER_TOML, encoding="utf-8")
    readme = out_dir / "README.md"
    if readme.is_file():
        write_readme_section(readme, readme_section(facts, frame))
        text = readme.read_text(encoding="utf-8")
        row = f"| cases (cases.csv, rows; `tools/sample_cases.py`) | {len(frame)} | {path.stat().st_size:,} |\n"
        lines = [line for line in text.splitlines(keepends=True) if not line.startswith("| cases (cases.csv")]
        at = next((i + 1 for i, line in enumerate(lines) if line.startswith("| visits (visits.csv")), None)
        if at is not None:
            lines.insert(at, row)
        readme.write_text("".join(lines), encoding="utf-8")
    return facts


def write_readme_section(readme: Path, section: str) -> None:
    """Replace the case-log section of the sample README (or add it before "What is real and what is synthetic")."""
    text = readme.read_text(encoding="utf-8")
    head, anchor = "## Case log (`cases.csv`)", "## What is real and what is synthetic"
    if head in text:
        start = text.index(head)
        end = text.index("\n## ", start + len(head)) + 1
        text = text[:start] + section + "\n" + text[end:]
    else:
        text = text.replace(anchor, section + "\n" + anchor)
    readme.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", default="sample_geojson", help="the sample folder (read, and cases.csv written)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    print(write_case_log(Path(args.sample), seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
