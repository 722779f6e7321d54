"""The sample's story: what the analysis of the finished sample shows, per community, for its README.

``tools.sample`` calls :func:`story_lines` after writing the layers: it runs ``gridcover analyze`` on them
(as of ``AS_OF``) and writes the figures of that run into the README's "The story" section, so the README
says what the analysis says, not what we hoped it would. What each community is *meant* to show is ours
(``MEANT``); the test ``tests/test_sample.py`` checks that the run bears it out.

Example
-------
>>> _share(0.8437)
'84%'
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

#: The date the story is measured at (the visit log runs to 2026-11-29).
AS_OF = date(2026, 11, 30)
#: What a planner should see in each community (ours: the sample's design), figures filled in from the run.
MEANT = {
    "510105001003": "well served (the planned services reach almost everyone); what stands out is the grids: "
                    "building {split} cut by the line of {split_grids}, grid {over} over capacity and the "
                    "street's lowest full-time share of grid workers ({full_time})",
    "510105001001": "fair services; the grid gap (estate {gap_estate}, {gap_households} households in no grid "
                    "between {gap_grids}) is its worst blind spot, with grids {over} over capacity (one worker "
                    "each) and {unstaffed} without any worker",
    "510105001002": "the most old estates ({old_share} of its households), and no day-care centre is placed in "
                    "an old estate, so the fewest reach the basic set and its special groups reach their services "
                    "least; grid {overlap_grid} overlaps building {overlap_building} of its neighbour",
    "510105001004": "the urban-rural fringe: the village ({village_households} households) lies in no grid and has "
                    "no 5-minute service; its blind spots top the list",
    "510105001005": "the farthest from the street office (a 15-minute service: {office} of its households reach it), "
                    "so fewer reach the whole basic set; old estate {unregistered} has unregistered tenants and "
                    "grid {wrong_code} carries another community's code",
}


def _share(x: float | None) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.0%}"


def _facility_table(facilities: pd.DataFrame, categories) -> list[str]:
    """Facilities by category and source (osm, register, synthetic)."""
    table = facilities.groupby(["category", "source"]).size().unstack(fill_value=0)
    lines = ["| category | osm | register | synthetic |", "|---|---|---|---|"]
    for c in categories:
        row = table.loc[c.id] if c.id in table.index else pd.Series(dtype=int)
        lines.append(f"| {c.id} {c.name_zh} | {int(row.get('osm', 0))} | {int(row.get('register', 0))} | "
                     f"{int(row.get('synthetic', 0))} |")
    return lines


def _community_rows(analysis, village_buildings: set) -> tuple[list[str], dict]:
    """The per-community table and the figures the narrative needs."""
    hh = analysis.households
    summary = analysis.summary
    card = analysis.scorecard
    spots = analysis.blindspots
    shares = pd.DataFrame(summary["reach"]["shares"])
    basic = shares[(shares["level"] == "community") & (shares["category"] == "basic_set")].set_index("id")
    office = shares[(shares["level"] == "community") & (shares["category"] == "street_office")].set_index("id")
    served = card[(card["level"] == "community") & (card["indicator"] == "special_group_services")].set_index("id")
    lines = ["| community | households | reach the basic set | old estates / rest | special groups reach their "
             "services | blind spots (red) | grids over capacity |", "|---|---|---|---|---|---|---|"]
    figures = {}
    for c in summary["per_community"]:
        mine = hh["community_id"].astype(str) == c["id"]
        old = mine & hh["old_estate"].astype(bool)
        s = spots[spots["community_id"] == c["id"]]
        b_share = float(basic.loc[c["id"], "households_share"]) if c["id"] in basic.index else None
        figures[c["id"]] = {"basic": b_share, "old_share": _share(old.sum() / max(mine.sum(), 1)),
                            "office": _share(float(office.loc[c["id"], "households_share"])) if c["id"] in office.index else "–",
                            "full_time": _share(c.get("full_time_share"))}
        lines.append(
            f"| {c['name']} ({c['id'][-3:]}) | {c['households']:,} | {_share(b_share)} | "
            f"{_share(hh.loc[old, 'basic_complete'].mean())} / {_share(hh.loc[mine & ~old, 'basic_complete'].mean())} | "
            f"{_share(float(served.loc[c['id'], 'value']) if c['id'] in served.index else None)} | "
            f"{len(s)} ({int((s['risk'] == 'red').sum())}) | {c['over_capacity_grids']} |")
    village = hh["building_id"].astype(str).isin(village_buildings)
    figures["village"] = {"households": int(village.sum()), "basic": float(hh.loc[village, "basic_complete"].mean())}
    return lines, figures


def _spot_lines(spots: pd.DataFrame, n: int = 8) -> list[str]:
    """The first blind spots with their accounts."""
    lines = ["| spot | community | risk | cells | area m² | what is wrong (account) |", "|---|---|---|---|---|---|"]
    for s in spots.head(n).itertuples():
        lines.append(f"| {s.id} | {s.community_name} | {s.risk} | {s.cells} | {s.area_m2:,.0f} | {s.account} |")
    return lines


def story_lines(out_dir: str | Path, *, defects: dict, village_buildings: set, categories) -> list[str]:
    """The README's "The story" section, measured on the sample in ``out_dir`` (run as of ``AS_OF``)."""
    from gridcover.engines.single import analyze

    analysis = analyze(Path(out_dir), reference_date=AS_OF)
    summary = analysis.summary
    facilities = analysis.data.layers["facilities"]
    table, figures = _community_rows(analysis, village_buildings)
    spots = analysis.blindspots
    grids = analysis.grids
    over = {}  # the grids the run finds over capacity, per community
    for g in grids[grids["over_capacity"].astype(bool)].itertuples():
        over.setdefault(str(g.community_id), []).append(f"`{g.id}`")
    d = defects
    fill = {
        "510105001003": dict(split=f"`{d['split']['building']}`", split_grids=" / ".join(f"`{g}`" for g in d["split"]["grids"]),
                             over=", ".join(over.get("510105001003", [])), full_time=figures["510105001003"]["full_time"]),
        "510105001001": dict(gap_estate=d["gap"]["estate"], gap_households=d["gap"]["households"],
                             gap_grids=" and ".join(f"`{g}`" for g in d["gap"]["grids"]),
                             over=", ".join(g for g in over.get("510105001001", []) if g != f"`{d['unstaffed']}`"),
                             unstaffed=f"`{d['unstaffed']}`"),
        "510105001002": dict(old_share=figures["510105001002"]["old_share"], overlap_grid=f"`{d['overlap']['grids'][0]}`",
                             overlap_building=f"`{d['overlap']['building']}`"),
        "510105001004": dict(village_households=f"{figures['village']['households']:,}"),
        "510105001005": dict(office=figures["510105001005"]["office"],
                             unregistered=f"`{d['unregistered_estate']['estate']}` {d['unregistered_estate']['name']}",
                             wrong_code=f"`{d['codes']['outside']['grid']}`"),
    }
    names = {c["id"]: c["name"] for c in summary["per_community"]}
    quality = summary.get("data_quality", [])
    lines = [
        "## The story (what the analysis shows)",
        "",
        f"Measured by `gridcover analyze sample_geojson --out out --as-of {AS_OF.isoformat()}` "
        "(`python -m tools.sample` runs it and writes these figures; `tools/sample_story.py`).",
        "",
        "Facilities: the real OSM POIs (mapped to categories by `geo/categories.toml`'s `osm` tags) and register "
        "offices are kept; the OSM extract of 2018 has next to none of a street's daily services (inside the street: "
        "no kindergarten, no primary school, one health station), so the planned and known services a real street "
        "has are added as a **synthetic layer, `source = synthetic`**, each name ending （示例） and its `building_id` "
        "the building it stands in (`tools/sample_facilities.py`: placed at "
        "buildings, greedily, on the real walking network, until each community's share is reached; the fringe "
        "village and the old estates' day care left out on purpose):",
        "",
        *_facility_table(facilities, categories),
        "",
        f"{summary['reach']['households_basic_complete']:,} of {summary['households']:,} households reach the whole "
        f"basic set within its tiers. Per community:",
        "",
        *table,
        "",
        f"The fringe village: {figures['village']['households']:,} households, {_share(figures['village']['basic'])} "
        "reach the basic set.",
        "",
        "What a planner should see:",
        "",
    ]
    for cid, text in MEANT.items():
        if cid in names:
            lines.append(f"- **{names[cid]}** ({_share(figures[cid]['basic'])} reach the basic set): "
                         + text.format(**fill[cid]) + ".")
    lines += [
        "",
        f"Blind spots: {len(spots)}, each inside one community and at most "
        f"{analysis.risk_context.config.max_spot_area_m2:,.0f} m² (`risk.toml` [blindspots] `max_area_m2`); the first:",
        "",
        *_spot_lines(spots),
        "",
        "Data quality (`summary.json` `data_quality`): "
        + (" ".join(f"`{q['category']}`: {q['message_en']}" for q in quality) if quality else "nothing flagged."),
        "",
        "`gridcover sites sample_geojson --category elderly_daycare --as-of 2026-11-30` proposes day-care sites and "
        "says, per site, how many newly reached households now reach the whole basic set and what the others "
        "still miss (a day-care centre alone does not complete an old estate that also lacks a health station).",
        "",
    ]
    return lines
