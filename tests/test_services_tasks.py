"""The visit lists and walking routes a grid worker gets (gridcover/services/tasks.py) on the sample district."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo.errors import InputError, NotFoundError
from geo.visits import RISK_ORDER
from gridcover.services.tasks import TasksService
from gridcover.store import open_workspace
from backends import backend, postgis_dsn  # noqa: F401 - fixtures: the last test runs on GeoPackage and PostGIS

DAY = "2026-12-03"  # a Thursday: the weekly visits of the elderly living alone are due from today


@pytest.fixture(scope="module")
def service(sample_analysis):
    return TasksService(open_workspace(sample_analysis[1]))


@pytest.fixture(scope="module")
def page(service):
    return service.grid_tasks("G02-01", date=DAY)


def test_the_list_holds_only_special_group_households_of_the_grid_each_due_or_overdue(service, page):
    households = service.store.read("households").set_index("id")
    listed = [h["household_id"] for h in page["households"]]
    assert listed and len(listed) == len(set(listed))
    mine = households.loc[listed]
    assert (mine["grid_id"] == "G02-01").all()
    groups = mine[["elderly_alone", "child_in_difficulty", "mental_disorder"]].fillna(False).astype(bool)
    assert groups.any(axis=1).all()  # a household in no special group never appears
    assert {h["state"] for h in page["households"]} <= {"due", "overdue"}
    assert page["counts"]["overdue"] + page["counts"]["due"] == page["counts"]["households"] == len(listed)
    first = page["households"][0]
    assert first["address"] and first["building"] and first["estate"] and first["due"][0]["period_end"]


def test_the_priority_puts_the_worst_colour_and_the_overdue_first(page):
    by_priority = sorted(page["households"], key=lambda h: h["priority"])
    risk = [RISK_ORDER.index(h["risk"] or "none") for h in by_priority]
    assert risk == sorted(risk)
    for colour in set(risk):  # within a colour, overdue before due
        states = [h["state"] for h, r in zip(by_priority, risk) if r == colour]
        assert states == sorted(states, key=lambda s: s != "overdue")


def test_the_route_starts_at_the_service_station_visits_every_building_once_and_its_legs_add_up(page):
    route = page["route"]
    assert route["start"]["kind"] == "service_station" and route["start"]["name"]
    legs = route["legs"]
    assert legs[0]["from"] == "start" and legs[-1]["to"] == "start"
    assert all(a["to"] == b["from"] for a, b in zip(legs, legs[1:]))
    stops = {h["stop"] for h in page["households"] if h["visit"]}
    assert sorted(leg["to"] for leg in legs[:-1]) == sorted(stops) and len(legs) == page["counts"]["stops"] + 1
    assert sum(leg["minutes"] for leg in legs) == pytest.approx(route["total_min"], abs=0.05 * len(legs))
    assert sum(leg["metres"] for leg in legs) == pytest.approx(route["total_m"], abs=0.1 * len(legs))
    # the list is in walking order, the households of one building together
    visits = [h["visit"] for h in page["households"]]
    assert visits == sorted(visits) and visits[0] == 1


def test_a_repeated_request_walks_no_tour_again(service, page):
    tours = dict(service._tours)
    again = service.grid_tasks("G02-01", date=DAY)
    assert again == page and dict(service._tours).keys() == tours.keys()
    again["households"].clear()  # a caller changing its answer does not change the next one
    assert service.grid_tasks("G02-01", date=DAY) == page


def test_a_household_far_from_every_road_is_listed_as_unreachable_never_dropped(sample_analysis):
    service = TasksService(open_workspace(sample_analysis[1]))
    ctx = service.context()
    base = service.grid_tasks("G02-01", date=DAY)
    moved = base["households"][0]["household_id"]
    row = ctx.households.index[ctx.households["id"] == moved]
    ctx.households.loc[row, "building_id"] = None
    ctx.households.loc[row, "x"] += 20_000.0  # 20 km east, off the sample's network
    service._pages.clear()  # the page made before the move is kept per date
    page = service.grid_tasks("G02-01", date=DAY)
    assert [h["household_id"] for h in page["households"]].count(moved) == 1
    gone = next(h for h in page["households"] if h["household_id"] == moved)
    assert gone["visit"] == 0 and gone["walk_min"] is None and page["households"][-1]["household_id"] == moved
    assert page["unreachable"] == [{"household_id": moved, "stop": f"h:{moved}", "reason": "not_on_network"}] or \
        page["unreachable"] == [{"household_id": moved, "stop": f"h:{moved}", "reason": "no_location"}]
    assert page["counts"]["unreachable"] == 1 and page["counts"]["households"] == base["counts"]["households"]


def test_a_worker_gets_the_lists_of_their_grids_only(service):
    grids = service.grids()
    name = grids.loc[grids["id"] == "G02-01", "worker_name"].iloc[0]
    result = service.tasks(date=DAY, worker=name)
    assert [p["grid"]["id"] for p in result["grids"]] == grids.loc[grids["worker_name"] == name, "id"].tolist()
    assert all(p["grid"]["worker"] == name for p in result["grids"])
    with pytest.raises(NotFoundError, match="no grid has the grid worker '无此人'"):
        service.tasks(date=DAY, worker="无此人")


def test_every_grid_in_one_run_counts_the_households_due_outside_every_grid(service):
    result = service.tasks(date=DAY)
    assert len(result["grids"]) == len(service.grids())
    assert result["outside_grids"]["households_due"] > 0  # the sample has households in no grid


def test_dates_before_and_after_the_records_are_said_so(service):
    before = service.tasks(date="2020-01-06", grids=["G02-01"])
    assert "before_records" in {n["code"] for n in before["notes"]}
    after = service.tasks(date="2027-06-01", grids=["G02-01"])
    note = next(n for n in after["notes"] if n["code"] == "after_records")
    assert "after the last visit record" in note["text"]
    assert after["grids"][0]["counts"]["overdue"] >= 1


def test_bad_dates_and_unknown_grids_are_one_clear_error(service):
    with pytest.raises(InputError, match="field 'date': must be a date YYYY-MM-DD, not '2026-13-01'"):
        service.tasks(date="2026-13-01")
    with pytest.raises(NotFoundError, match="no grid 'G99'"):
        service.grid_tasks("G99", date=DAY)


def test_the_visits_layer_is_the_record_when_the_workspace_has_one(tmp_path):
    from conftest import tiny_visits, write_layers, tiny_layers
    from gridcover.engines.single import analyze
    from gridcover.io.outputs import write_outputs

    folder = write_layers(tiny_layers(), tmp_path / "tiny")
    tiny_visits().to_csv(folder / "visits.csv", index=False)
    out = write_outputs(analyze(folder), tmp_path / "out")
    result = TasksService(open_workspace(out)).tasks(date="2026-12-03")
    assert result["visits_source"] == "visits"
    listed = {h["household_id"]: h for p in result["grids"] for h in p["households"]}
    # H2 kept W48 (24 November) but not yet this week: due on Thursday; H7 only phoned: overdue
    assert listed["H2"]["state"] == "due" and listed["H2"]["last_visit"] == "2026-11-24"
    assert listed["H7"]["state"] == "overdue" and listed["H7"]["last_visit"] is None
    # the tiny district has no roads: nobody is dropped, each is listed as unreachable and why
    unreachable = {u["household_id"]: u["reason"] for p in result["grids"] for u in p["unreachable"]}
    assert set(unreachable) == set(listed) and set(unreachable.values()) == {"no_roads"}


def test_both_backends_give_the_same_list_and_route(sample_analysis, backend):

    gpkg = TasksService(open_workspace(sample_analysis[1])).grid_tasks("G02-01", date=DAY)
    other = TasksService(backend.open(sample_analysis[1])).grid_tasks("G02-01", date=DAY)
    assert [h["household_id"] for h in other["households"]] == [h["household_id"] for h in gpkg["households"]]
    assert other["route"]["total_m"] == pytest.approx(gpkg["route"]["total_m"], rel=0.01)
    assert other["route"]["start"] == gpkg["route"]["start"]
