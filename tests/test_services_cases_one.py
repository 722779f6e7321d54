"""A single case by the service's one-case path (CasesService.intake_one: no frame) is answered and stored
exactly as the batch path (CasesService.intake) answers and stores it: the same JSON answer, the same stored row
and fingerprint, for the sample's point cases on the analysed sample and for the edge cases of the lookup's test
city (a grid boundary tie, a shared vertex, a building across an edge, outside every grid, GCJ-02 and BD-09,
across a holiday, urgent, cross-department, a deadline already passed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from gridcover.services.cases import CasesService, CaseViewer, cases_table
from gridcover.store import open_workspace
from gridcover.store.base import CaseError, case_fingerprint, case_fingerprints
from lookup_data import write_workspace, xy

ROOT = Path(__file__).resolve().parents[1]
HOTLINE = CaseViewer(name="12345热线")
NOW = pd.Timestamp("2026-11-30T16:00:00Z")  # the end of the sample's last day in Beijing


def pair(folder: Path) -> tuple[CasesService, CasesService]:
    """Two services on two copies of one workspace: one takes cases one by one, the other as batches."""
    other = folder.parent / f"{folder.name}-batch"
    shutil.copytree(folder, other)
    return CasesService(open_workspace(folder)), CasesService(open_workspace(other))


def assert_alike(one: CasesService, batch: CasesService, items: list[dict], *, now=NOW) -> None:
    for item in items:
        fast = one.intake_one(dict(item), viewer=HOTLINE, now=now)
        assert fast is not None, f"the one-case path left {item} to the batch path"
        slow = batch.intake(cases_table(dict(item)), viewer=HOTLINE, now=now)
        assert fast == slow, f"{item['id']}: one-case {fast} != batch {slow}"
    stored_one, stored_batch = one.case_store.list(), batch.case_store.list()
    pd.testing.assert_frame_equal(stored_one, stored_batch)
    assert stored_one["fingerprint"].tolist() == case_fingerprints(stored_one).tolist()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from gridcover.engines.single import analyze_single

    folder = tmp_path_factory.mktemp("sample") / "out"
    analyze_single(ROOT / "sample_geojson", folder)
    return folder


def test_the_samples_point_cases_are_answered_and_stored_alike_one_by_one(sample):
    log = pd.read_csv(ROOT / "sample_geojson" / "cases.csv", dtype=str, keep_default_na=False)
    points = log[(log["lon"] != "") & (log["household_id"] == "")]
    chosen = points.iloc[np.random.default_rng(14).choice(len(points), 150, replace=False)]
    items = []
    for row in chosen.to_dict("records"):
        item = {"id": row["id"], "reported_at": row["reported_at"], "urgency": row["urgency"], "lon": float(row["lon"]),
                "lat": float(row["lat"]), "crs": "gcj02", "category": row["category"] or None,
                "source": row["source"] or None}  # the sample's points are GCJ-02 (its gridcover.toml)
        item.update({k: row[k] for k in ("accepted_at", "closed_at") if row[k]})
        items.append(item)
    one, batch = pair(sample)
    assert_alike(one, batch, items)
    outside = one.case_store.list()["covered"].eq(False).sum()
    assert 0 < outside < len(items)  # the sample's gap and fringe village are in the draw


def edge_items() -> list[dict]:
    def at(cid, x, y, crs="wgs84", **extra):
        lon, lat = xy(x, y)
        if crs == "gcj02":
            lon, lat = wgs84_to_gcj02(lon, lat)
        if crs == "bd09":
            lon, lat = wgs84_to_bd09(lon, lat)
        return {"id": cid, "reported_at": "2026-11-30 09:00", "urgency": "general", "lon": float(lon),
                "lat": float(lat), "crs": crs, **extra}

    return [
        at("edge", 2, 3), at("vertex", 2, 2), at("edge-G2-G10", 2, 1.5), at("building-across", 2.25, 0.75),
        at("outside", 12, 0.5, urgency="urgent"), at("hole", 7.5, 2), at("far", 40, 40),
        at("gcj", 2.5, 1.5, crs="gcj02"), at("bd", 0.5, 3.5, crs="bd09", urgency="跨部门"),
        at("holiday", 0.5, 0.5, reported_at="2026-09-30 10:00", urgency="cross_department"),
        at("on-a-holiday", 3, 3, reported_at="2026-10-03T15:00:00+08:00", urgency="cross_department"),
        at("late-urgent", 1, 1, reported_at="2026-11-30 20:00", urgency="紧急"),
        at("answered", 1, 3, reported_at="2026-11-27 17:00", accepted_at="2026-11-27 17:30",
           closed_at="2026-11-30 10:00", category="噪音扰民", source="12345"),
        at("closed-unaccepted", 3, 1, reported_at="2026-11-30T01:00:00Z", closed_at="2026-11-30T02:00:00Z"),
        at("utc", 3.5, 3.5, reported_at="2026-11-30T07:59:59.75Z", urgency="URGENT"),
        at("date-only", 0.25, 0.25, reported_at="2026-11-28"),
        at("spaced", 1.5, 1.5, category="  ", source=" 110 "),
    ]


def test_the_edge_cases_are_answered_and_stored_alike_one_by_one(tmp_path):
    one, batch = pair(write_workspace(tmp_path / "ws"))
    assert_alike(one, batch, edge_items())
    got = {c["id"]: c for c in one.list_cases(viewer=CaseViewer(name="x", every_case=True), now=NOW)["cases"]}
    assert (got["edge"]["grid_id"], got["edge"]["method"]) == ("G3", "boundary")
    assert got["outside"]["covered"] is False and got["outside"]["grid_id"] == "G5"
    assert got["late-urgent"]["overdue"] is True and got["answered"]["status"] == "closed"


def test_the_nearest_grid_of_a_case_outside_every_grid_is_the_lookups(tmp_path):
    one, batch = pair(write_workspace(tmp_path / "ws"))
    lon, lat = xy(12, 0.5)
    looked = one.lookup.get_index()
    from geo.lookup import lookup_points

    answer = lookup_points(looked, [lon], [lat])
    (case,) = one.intake_one({"id": "out", "reported_at": "2026-11-30 09:00", "urgency": "general", "lon": lon,
                              "lat": lat}, viewer=HOTLINE, now=NOW)["cases"]
    assert (case["nearest_grid_id"], case["distance_m"]) == (answer["nearest_grid_id"][0], answer["distance_m"][0])


@pytest.mark.parametrize("change", [
    {"urgency": "soon"}, {"reported_at": "2026-12-01 09:00"}, {"reported_at": "30/11/2026"},
    {"accepted_at": "2026-11-30 08:00"}, {"closed_at": "2026-11-30 09:30", "accepted_at": "2026-11-30 09:40"},
    {"household_id": "H1"}, {"address": "东大街5号"}, {"lon": 200.0}, {"crs": "osgb"}, {"id": ""}, {"id": "x" * 65},
    {"colour": "red"}, {"category": 5}, {"reported_at": "2026-11-30 9:00"},
])
def test_anything_unusual_is_left_to_the_batch_path(tmp_path, change):
    one, _ = pair(write_workspace(tmp_path / "ws"))
    lon, lat = xy(0.5, 3.5)
    item = {"id": "A", "reported_at": "2026-11-30 09:00", "urgency": "general", "lon": lon, "lat": lat, **change}
    assert one.intake_one(item, viewer=HOTLINE, now=NOW) is None
    assert one.case_store.count() == 0


def test_a_resend_is_left_to_the_batch_path_which_answers_it_as_stored(tmp_path):
    one, _ = pair(write_workspace(tmp_path / "ws"))
    item = edge_items()[0]
    first = one.intake_one(dict(item), viewer=HOTLINE, now=NOW)
    assert one.intake_one(dict(item), viewer=HOTLINE, now=NOW + pd.Timedelta(minutes=1)) is None
    again = one.intake(cases_table(dict(item)), viewer=HOTLINE, now=NOW + pd.Timedelta(minutes=1))
    assert again["stored"] == 0 and again["cases"][0]["stored"] is False
    assert again["cases"][0]["received_at"] == first["cases"][0]["received_at"]
    with pytest.raises(CaseError) as refused:
        one.intake_one(dict(item, urgency="urgent"), viewer=HOTLINE, now=NOW)
    assert refused.value.problem == "case_id_conflict" and one.case_store.count() == 1


def test_the_fingerprint_of_one_case_is_the_batch_fingerprint():
    log = pd.read_csv(ROOT / "sample_geojson" / "cases.csv", dtype=str, keep_default_na=False).replace({"": None})
    frame = pd.DataFrame({"id": log["id"], "reported_at": pd.to_datetime(log["reported_at"]).dt.tz_localize("Asia/Shanghai"),
                          "urgency": log["urgency"], "category": log["category"], "source": log["source"],
                          "household_id": log["household_id"], "address": log["address"],
                          "input_crs": np.where(log["lon"].notna(), "gcj02", None),
                          "lon": pd.to_numeric(log["lon"]), "lat": pd.to_numeric(log["lat"])})
    batch = case_fingerprints(frame)
    assert [case_fingerprint(r) for r in frame.to_dict("records")] == batch.tolist()
    assert len(set(batch)) == len(frame)
    edge = {"id": "A", "reported_at": pd.Timestamp("2026-11-30T01:00:00Z"), "urgency": "urgent", "category": "",
            "source": None, "lon": float("nan"), "lat": 30.123456789012, "address": "东大街5号 锦华苑 3栋"}
    assert case_fingerprint(edge) == case_fingerprints(pd.DataFrame([edge]))[0]
