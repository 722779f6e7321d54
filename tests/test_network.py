"""The walking graph: which roads are walkable, where lines join, near misses, bridges, fragments."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.network import NetworkSettings, attach_points, insert_nodes, walkable, walking_graph


def _roads(lines, **cols):
    return gpd.GeoDataFrame({"highway": cols.pop("highway", ["residential"] * len(lines)), **cols},
                            geometry=[shapely.LineString(line) for line in lines], crs="EPSG:32648")


def test_motorways_and_trunks_without_footway_are_not_walkable():
    roads = _roads([[(0, 0), (1, 0)]] * 6, highway=["motorway", "trunk", "trunk", "footway", "steps", "primary"],
                   sidewalk=[None, None, "both", None, None, None], foot=[None, None, None, None, None, "no"])
    assert walkable(roads).tolist() == [False, False, True, True, True, False]


def test_lines_join_where_they_share_a_vertex():
    g = walking_graph(_roads([[(0, 0), (100, 0)], [(100, 0), (100, 100)], [(100, 100), (0, 100)]]))
    assert g.stats["nodes"] == 4 and g.stats["components"] == 1 and g.stats["length_km"] == pytest.approx(0.3)


def test_a_bridge_crossing_without_a_shared_vertex_stays_apart():
    g = walking_graph(_roads([[(0, 50), (100, 50)], [(50, 0), (50, 100)]], highway=["primary", "footway"]))
    assert g.stats["components"] == 2


def test_a_near_miss_end_is_joined_to_the_nearest_vertex():
    g = walking_graph(_roads([[(0, 0), (100, 0)], [(100.4, 0.3), (200, 0)]]))
    assert g.stats["components"] == 1 and g.stats["snapped_ends"] == 1


def test_a_near_miss_end_is_joined_to_the_middle_of_a_segment():
    # a T junction drawn 0.6 m short of the through road, whose nearest vertex is 50 m away
    g = walking_graph(_roads([[(0, 0), (100, 0)], [(50, 0.6), (50, 80)]]))
    assert g.stats["components"] == 1
    assert g.stats["nodes"] == 5  # the through road gained a vertex at x=50


def test_ends_farther_than_the_tolerance_stay_apart_and_are_reported():
    g = walking_graph(_roads([[(0, 0), (100, 0)], [(50, 3), (50, 80)]]))
    assert g.stats["components"] == 2
    g2 = walking_graph(_roads([[(0, 0), (100, 0)], [(50, 3), (50, 80)]]), settings=NetworkSettings(snap_tolerance_m=5))
    assert g2.stats["components"] == 1


def test_no_walkable_road_is_a_clear_error():
    with pytest.raises(ValueError, match="no walkable road"):
        walking_graph(_roads([[(0, 0), (1, 0)]], highway=["motorway"]))


def test_attach_points_to_the_nearest_point_on_an_edge():
    g = walking_graph(_roads([[(0, 0), (100, 0)]]))
    att = attach_points(g, np.array([30.0, 50.0, 40.0]), np.array([10.0, -5.0, 400.0]), max_distance=250)
    assert att.segment.tolist()[:2] == [0, 0] and att.segment[2] == -1  # 400 m away: reported, not attached
    assert att.along[:2] == pytest.approx([30.0, 50.0])
    assert att.off[:2] == pytest.approx([10.0, 5.0])


def test_inserting_points_splits_edges_and_adds_leaves():
    g = walking_graph(_roads([[(0, 0), (100, 0)]]))
    att = attach_points(g, np.array([30.0, 60.0]), np.array([10.0, 0.0]), max_distance=250)
    g2, leaf = insert_nodes(g, att)
    from scipy.sparse.csgraph import dijkstra
    d = dijkstra(g2.matrix, directed=False, indices=leaf[0])
    assert d[leaf[1]] == pytest.approx(10 + 30 + 1e-9, abs=1e-6)  # off the road 10 m, along it 30 m
    start = int(np.flatnonzero((g2.x == 0) & (g2.y == 0))[0])
    assert d[start] == pytest.approx(40.0)
