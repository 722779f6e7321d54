"""The walking route of a visit list: the shortest round over the walking network, and what is left out."""

from __future__ import annotations

import itertools

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from geo.lifecircle import household_origins
from geo.network import walking_graph
from geo.reach import Origins
from geo.tour import held_karp, one_tree_bound, order_stops, walking_tour

SPACING = 100.0
SIDE = 7
CRS = "EPSG:32648"  # UTM 48N: Chengdu


def _lattice(missing: set = frozenset()) -> gpd.GeoDataFrame:
    """A street lattice SIDE × SIDE with SPACING metres between crossings, minus the ``missing`` blocks' edges."""
    lines = []
    for i, j in itertools.product(range(SIDE), range(SIDE)):
        for di, dj in ((1, 0), (0, 1)):
            if i + di < SIDE and j + dj < SIDE and ((i, j), (i + di, j + dj)) not in missing:
                lines.append(shapely.LineString([(i * SPACING, j * SPACING), ((i + di) * SPACING, (j + dj) * SPACING)]))
    return gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines, crs=CRS)


def _node_of(graph, i: int, j: int) -> int:
    return int(np.flatnonzero(np.isclose(graph.x, i * SPACING) & np.isclose(graph.y, j * SPACING))[0])


def _brute_force(dist: np.ndarray) -> float:
    """The shortest round from place 0 by trying every order (an independent check, small n only)."""
    rest = range(1, len(dist))
    return min(dist[0, p[0]] + sum(dist[p[k], p[k + 1]] for k in range(len(p) - 1)) + dist[p[-1], 0]
               for p in itertools.permutations(rest))


@pytest.mark.parametrize("seed", range(6))
def test_the_tour_is_the_shortest_round_through_the_lattice(seed):
    rng = np.random.default_rng(seed)
    missing = {((1, 1), (2, 1)), ((3, 2), (3, 3)), ((4, 4), (5, 4)), ((2, 5), (2, 6))}
    roads = _lattice(missing)
    graph = walking_graph(roads)
    streets = nx.Graph()
    streets.add_weighted_edges_from(zip(graph.u.tolist(), graph.v.tolist(), graph.length.tolist()))
    cells = rng.choice(SIDE * SIDE, size=1 + int(rng.integers(3, 8)), replace=False)
    nodes = np.array([_node_of(graph, c // SIDE, c % SIDE) for c in cells])
    tour = walking_tour(graph, nodes[1:], start=int(nodes[0]), crs=CRS, time_limit_s=0.2)
    dist = np.array([[nx.shortest_path_length(streets, a, b, weight="weight") for b in nodes] for a in nodes])
    assert tour.total_m == pytest.approx(_brute_force(dist), abs=0.01)
    assert tour.solver.startswith("ortools") and tour.bound == "exact" and tour.gap == pytest.approx(0, abs=1e-9)
    assert sorted(tour.stops["visit"]) == list(range(1, len(nodes)))
    # every leg is drawn along the streets it walks: its line is as long as its metres, and they add up
    assert tour.legs["metres"].sum() == pytest.approx(tour.total_m, abs=0.5)
    assert np.allclose(tour.legs.geometry.length, tour.legs["metres"], atol=0.1)
    assert tour.legs["from_id"].iloc[0] == "start" and tour.legs["to_id"].iloc[-1] == "start"
    assert tour.total_min == pytest.approx(tour.total_m / 1.0 / 60.0)


@pytest.mark.parametrize("n", [5, 8, 12])
def test_the_solver_finds_the_exact_optimum_of_small_instances(n):
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 800, size=(n, 2))
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    order, solver = order_stops(d, time_limit_s=0.3)
    exact, exact_order = held_karp(d)
    assert solver == "ortools_gls" and sorted(order.tolist()) == list(range(n)) and order[0] == 0
    length = d[order, np.roll(order, -1)].sum()
    assert length == pytest.approx(exact, abs=0.5)  # the solver works in whole decimetres
    assert d[exact_order, np.roll(exact_order, -1)].sum() == pytest.approx(exact)
    if n <= 8:
        assert exact == pytest.approx(_brute_force(d))


def test_a_larger_tour_is_measured_against_the_one_tree_bound():
    rng = np.random.default_rng(7)
    roads = _lattice()
    graph = walking_graph(roads)
    pts = rng.uniform(0, (SIDE - 1) * SPACING, size=(20, 2))
    tour = walking_tour(graph, Origins.simple(pts[:, 0], pts[:, 1]), start=(0.0, 0.0), crs=CRS, time_limit_s=0.3)
    assert tour.bound == "held_karp_1tree"
    assert 0 < tour.bound_m <= tour.total_m and tour.gap == pytest.approx(tour.total_m / tour.bound_m - 1)
    assert tour.gap < 0.15


def test_the_one_tree_bound_never_exceeds_the_optimum():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        xy = rng.uniform(0, 500, size=(10, 2))
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        exact = held_karp(d)[0]
        bound = one_tree_bound(d, upper=exact * 1.05)
        assert 0.9 * exact < bound <= exact + 1e-6


def test_stops_no_walk_reaches_are_reported_not_dropped():
    roads = _lattice()
    island = gpd.GeoDataFrame({"highway": ["residential"]},
                              geometry=[shapely.LineString([(2000, 0), (2300, 0)])], crs=CRS)
    graph = walking_graph(gpd.GeoDataFrame(
        {"highway": ["residential"] * (len(roads) + 1)},
        geometry=list(roads.geometry) + list(island.geometry), crs=CRS))
    x = np.array([100.0, 5000.0, 2100.0, 300.0])
    y = np.array([100.0, 5000.0, 10.0, 300.0])
    tour = walking_tour(graph, Origins.simple(x, y), start=(0.0, 0.0), stop_ids=np.array(["a", "far", "island", "b"]))
    assert tour.order.tolist() in (["a", "b"], ["b", "a"])
    assert tour.unreachable.set_index("stop_id")["reason"].to_dict() == {"far": "not_on_network",
                                                                          "island": "cut_off"}
    assert tour.visit_of.tolist()[1:3] == [0, 0] and tour.total_m == pytest.approx(1200)


def test_a_start_off_the_network_leaves_every_stop_unreachable():
    graph = walking_graph(_lattice())
    tour = walking_tour(graph, np.array([_node_of(graph, 1, 1)]), start=(9000.0, 9000.0))
    assert tour.order.tolist() == [] and tour.total_m == 0 and len(tour.legs) == 0
    assert tour.unreachable["reason"].tolist() == ["start_not_on_network"]


def test_one_stop_is_there_and_back():
    graph = walking_graph(_lattice())
    tour = walking_tour(graph, np.array([_node_of(graph, 2, 3)]), start=_node_of(graph, 0, 0), crs=CRS)
    assert tour.legs["metres"].tolist() == [500.0, 500.0] and tour.total_m == pytest.approx(1000)
    assert tour.solver == "trivial" and tour.gap == 0
    lonlat = tour.legs_wgs84().geometry.get_coordinates()
    assert lonlat["x"].between(100, 110).all() and lonlat["y"].between(-1, 1).all()  # 48N's equator, 105°E


def test_a_stop_at_the_start_is_visited_at_no_cost():
    graph = walking_graph(_lattice())
    start = _node_of(graph, 3, 3)
    tour = walking_tour(graph, np.array([start, _node_of(graph, 3, 4)]), start=start)
    assert tour.total_m == pytest.approx(200) and sorted(tour.stops["visit"]) == [1, 2]
    assert sorted(tour.legs["metres"]) == [0.0, 100.0, 100.0]


def test_households_of_one_building_are_one_stop():
    graph = walking_graph(_lattice())
    x = np.array([100.0, 100.0, 400.0, 100.0, 400.0])
    y = np.array([200.0, 200.0, 200.0, 200.0, 200.0])
    buildings = np.array(["B1", "B1", "B2", "B1", "B2"])
    tour = walking_tour(graph, Origins.simple(x, y), start=(100.0, 0.0), stop_ids=buildings)
    assert len(tour.stops) == 2 and len(tour.legs) == 3
    first = tour.order[0]
    assert tour.visit_of.tolist() == [1 if b == first else 2 for b in buildings]
    same_point = walking_tour(graph, Origins.simple(x, y), start=(100.0, 0.0))  # no ids: one stop per point
    assert len(same_point.stops) == 2 and same_point.total_m == pytest.approx(tour.total_m)


def test_a_gated_estate_is_entered_by_its_gate_and_walked_inside():
    graph = walking_graph(_lattice())
    # an estate filling the block (100..200, 100..200) with one gate on its south street at (150, 100)
    estate = shapely.box(101, 101, 199, 199)
    buildings = gpd.GeoDataFrame({"id": ["B1", "B2"], "estate_id": ["E1", "E1"]},
                                 geometry=[shapely.box(110, 170, 120, 180), shapely.box(180, 170, 190, 180)], crs=CRS)
    estates = gpd.GeoDataFrame({"id": ["E1"]}, geometry=[estate], crs=CRS)
    gates = gpd.GeoDataFrame({"id": ["G1"], "estate_id": ["E1"]}, geometry=[shapely.Point(150, 101)], crs=CRS)
    origins, _ = household_origins(np.array([np.nan, np.nan]), np.array([np.nan, np.nan]), np.array(["B1", "B2"]),
                                   buildings=buildings, estates=estates, gates=gates)
    tour = walking_tour(graph, origins, start=(150.0, 0.0), stop_ids=np.array(["B1", "B2"]), crs=CRS)
    b1, b2 = shapely.point_on_surface(buildings.geometry.to_numpy())
    inside = tour.legs[tour.legs["from_id"].isin(["B1", "B2"]) & tour.legs["to_id"].isin(["B1", "B2"])]
    assert inside["metres"].iloc[0] == pytest.approx(b1.distance(b2), abs=0.1)  # straight, inside the estate
    # round the block from (150, 0) to the gate's street (200 m), 1 m to the gate, then straight inside
    first = tour.legs.iloc[0]
    building = b1 if first["to_id"] == "B1" else b2
    assert first["metres"] == pytest.approx(201 + building.distance(shapely.Point(150, 101)), abs=0.2)
    assert shapely.get_coordinates(first.geometry).tolist()[-2] == pytest.approx([150, 101])  # through the gate
