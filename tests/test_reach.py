"""Walking reach: exact against an independent networkx computation, edge cases, what-if edits, estimates."""

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from geo.errors import ConfigError
from geo.reach import METHOD_ESTIMATE, METHOD_NETWORK, Origins, ReachModel, load_config
from gridcover.io.folder import read_rule_files

CONFIG = load_config()


def _roads(lines):
    return gpd.GeoDataFrame({"highway": ["residential"] * len(lines)},
                            geometry=[shapely.LineString(l) for l in lines], crs="EPSG:32648")


def _facilities(rows):
    return gpd.GeoDataFrame({"id": [r[0] for r in rows], "category": [r[1] for r in rows]},
                            geometry=[shapely.Point(r[2], r[3]) for r in rows], crs="EPSG:32648")


def random_network(seed: int, n: int = 12, spacing: float = 80.0):
    """A jittered street grid with missing blocks: one LineString per segment, vertices shared."""
    rng = np.random.default_rng(seed)
    pts = np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2) * spacing
    pts = pts + rng.uniform(-15, 15, pts.shape)
    idx = np.arange(n * n).reshape(n, n)
    edges = [(idx[i, j], idx[i, j + 1]) for i in range(n) for j in range(n - 1)]
    edges += [(idx[i, j], idx[i + 1, j]) for i in range(n - 1) for j in range(n)]
    keep = rng.random(len(edges)) > 0.15
    return [[tuple(pts[a]), tuple(pts[b])] for (a, b), k in zip(edges, keep) if k]


def independent_minutes(lines, fac_xy, origin_xy, speed=1.0):
    """networkx Dijkstra on the raw segments, points joined at their nearest point on the nearest segment."""
    segs = [shapely.LineString(l) for l in lines]
    G = nx.Graph()
    splits = {}  # segment -> list of (along, node)

    def attach(p, name):
        d = [s.distance(p) for s in segs]
        k = int(np.argmin(d))
        if d[k] > 250:
            return None
        t = segs[k].project(p)
        splits.setdefault(k, []).append((t, name))
        G.add_edge(name, ("on", name), weight=d[k])
        return name

    fac_nodes = [attach(shapely.Point(*p), ("f", i)) for i, p in enumerate(fac_xy)]
    org_nodes = [attach(shapely.Point(*p), ("o", i)) for i, p in enumerate(origin_xy)]
    for k, s in enumerate(segs):
        a, b = [tuple(np.round(c, 6)) for c in s.coords]
        chain = [(0.0, a)] + sorted((t, ("on", name)) for t, name in splits.get(k, [])) + [(s.length, b)]
        for (t0, n0), (t1, n1) in zip(chain, chain[1:]):
            G.add_edge(n0, n1, weight=t1 - t0)
    sources = [f for f in fac_nodes if f is not None]
    dist = nx.multi_source_dijkstra_path_length(G, sources) if sources else {}
    return np.array([dist.get(o, np.inf) if o is not None else np.inf for o in org_nodes]) / speed / 60


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_minutes_agree_with_networkx(seed):
    lines = random_network(seed)
    rng = np.random.default_rng(100 + seed)
    fac_xy = rng.uniform(0, 880, (6, 2))
    org_xy = rng.uniform(-20, 900, (120, 2))
    fac = _facilities([(f"F{i}", "kindergarten", *xy) for i, xy in enumerate(fac_xy)])
    model = ReachModel.build(_roads(lines), fac, Origins.simple(org_xy[:, 0], org_xy[:, 1]), config=CONFIG)
    assert model.method == METHOD_NETWORK
    got = model.origin_minutes("kindergarten")
    want = independent_minutes(lines, fac_xy, org_xy)
    # agreement to 0.1 s: the graph rounds vertices to 1 cm (NetworkSettings.vertex_precision_m)
    np.testing.assert_allclose(np.nan_to_num(got, nan=np.inf), want, rtol=0, atol=0.1 / 60)


def test_facility_on_the_same_edge_as_the_origin():
    lines = [[(0, 0), (1000, 0)]]
    fac = _facilities([("F", "shop", 600, 20)])
    model = ReachModel.build(_roads(lines), fac, Origins.simple(np.array([400.0]), np.array([-10.0])), config=CONFIG)
    # 10 m to the road, 200 m along it, 20 m to the shop: 230 m at 1 m/s
    assert model.origin_minutes("shop")[0] == pytest.approx(230 / 60)


def test_a_facility_on_a_disconnected_fragment_is_unreachable():
    lines = [[(0, 0), (500, 0)], [(0, 100), (500, 100)]]  # two parallel streets, never joined
    fac = _facilities([("F", "shop", 250, 105)])
    model = ReachModel.build(_roads(lines), fac, Origins.simple(np.array([100.0, 100.0]), np.array([-5.0, 95.0])),
                             config=CONFIG)
    minutes = model.origin_minutes("shop")
    assert np.isnan(minutes[0])  # null, never a made-up number
    assert minutes[1] == pytest.approx((5 + 150 + 5) / 60)
    assert model.stats["components"] == 2


def test_a_category_without_facilities_is_unreachable_everywhere():
    model = ReachModel.build(_roads([[(0, 0), (100, 0)]]), _facilities([("F", "shop", 10, 0)]),
                             Origins.simple(np.array([50.0]), np.array([0.0])), config=CONFIG)
    assert np.isnan(model.origin_minutes("nursing_home")).all()


def test_an_origin_far_from_every_road_is_reported_not_attached():
    model = ReachModel.build(_roads([[(0, 0), (100, 0)]]), _facilities([("F", "shop", 10, 0)]),
                             Origins.simple(np.array([50.0, 50.0]), np.array([5.0, 900.0])), config=CONFIG)
    assert model.origin_attached().tolist() == [True, False]
    assert model.stats["origins_not_attached"] == 1
    assert np.isnan(model.origin_minutes("shop")[1])


def test_a_gated_estate_is_left_by_its_gate():
    # the building sits next to road A, but its estate's only gate opens on road B
    lines = [[(0, 0), (1000, 0)], [(0, 200), (1000, 200)], [(1000, 0), (1000, 200)]]
    fac = _facilities([("F", "shop", 100, -5)])
    building = (100.0, 20.0)
    gate = (100.0, 190.0)
    origins = Origins(x=np.array([building[0]]), y=np.array([building[1]]), entry_origin=np.array([0]),
                      entry_x=np.array([gate[0]]), entry_y=np.array([gate[1]]), entry_extra=np.array([170.0]))
    model = ReachModel.build(_roads(lines), fac, origins, config=CONFIG)
    # 170 m inside the estate to the gate, 10 m to road B, 900 + 200 + 900 m round, 5 m to the shop
    assert model.origin_dist["shop"][0] == pytest.approx(170 + 10 + 900 + 200 + 900 + 5)
    # 36 minutes: beyond the 30-minute reporting horizon, so no figure is reported
    assert np.isnan(model.origin_minutes("shop")[0])
    plain = ReachModel.build(_roads(lines), fac, Origins.simple(np.array([building[0]]), np.array([building[1]])), config=CONFIG)
    assert plain.origin_minutes("shop")[0] * 60 == pytest.approx(20 + 5)


def test_ties_between_two_equally_near_facilities():
    lines = [[(0, 0), (200, 0)]]
    fac = _facilities([("A", "shop", 0, 0), ("B", "shop", 200, 0)])
    model = ReachModel.build(_roads(lines), fac, Origins.simple(np.array([100.0]), np.array([0.0])), config=CONFIG)
    assert model.origin_minutes("shop")[0] * 60 == pytest.approx(100)


def test_elderly_speed_is_slower():
    model = ReachModel.build(_roads([[(0, 0), (920, 0)]]), _facilities([("F", "shop", 920, 0)]),
                             Origins.simple(np.array([0.0]), np.array([0.0])), config=CONFIG)
    assert model.origin_minutes("shop", "general")[0] == pytest.approx(920 / 60)
    assert model.origin_minutes("shop", "elderly")[0] == pytest.approx(1000 / 60)


@pytest.mark.parametrize("seed", [3, 4])
def test_what_if_edits_equal_a_full_recomputation(seed):
    lines = random_network(seed)
    rng = np.random.default_rng(seed)
    org = rng.uniform(0, 880, (200, 2))
    rows = [(f"F{i}", "kindergarten", *xy) for i, xy in enumerate(rng.uniform(0, 880, (4, 2)))]
    model = ReachModel.build(_roads(lines), _facilities(rows), Origins.simple(org[:, 0], org[:, 1]), config=CONFIG)
    live = list(rows)
    for step in range(8):
        before = model.origin_dist["kindergarten"].copy()
        if step % 3 == 2 and len(live) > 1:
            victim = live.pop(int(rng.integers(len(live))))
            changed = model.remove_facility(victim[0])
        else:
            xy = rng.uniform(0, 880, 2)
            changed = model.add_facility("kindergarten", *xy, facility_id=f"W{step}")
            live.append((f"W{step}", "kindergarten", *xy))
        fresh = ReachModel.build(_roads(lines), _facilities(live), Origins.simple(org[:, 0], org[:, 1]), config=CONFIG)
        np.testing.assert_allclose(model.origin_dist["kindergarten"], fresh.origin_dist["kindergarten"], atol=1e-6)
        moved = np.flatnonzero(~np.isclose(before, model.origin_dist["kindergarten"]))
        assert set(moved) <= set(changed)  # every origin that changed is reported


def test_what_if_touches_only_the_neighbourhood():
    lines = random_network(7, n=30)
    rng = np.random.default_rng(7)
    org = rng.uniform(0, 2300, (2000, 2))
    rows = [(f"F{i}", "shop", *xy) for i, xy in enumerate(rng.uniform(0, 2300, (40, 2)))]
    model = ReachModel.build(_roads(lines), _facilities(rows), Origins.simple(org[:, 0], org[:, 1]), config=CONFIG)
    changed = model.add_facility("shop", 1150, 1150)
    assert 0 < len(changed) < len(org) / 5


def test_without_roads_the_estimate_is_straight_line_times_the_detour_factor():
    model = ReachModel.build(None, _facilities([("F", "shop", 300, 400)]), Origins.simple(np.array([0.0]), np.array([0.0])),
                             config=CONFIG)
    assert model.method == METHOD_ESTIMATE
    assert model.origin_minutes("shop")[0] * 60 == pytest.approx(500 * CONFIG.detour_factor)
    changed = model.add_facility("shop", 30, 40)
    assert changed.tolist() == [0] and model.origin_minutes("shop")[0] * 60 == pytest.approx(50 * CONFIG.detour_factor)


def test_categories_file_in_the_data_folder_wins(tmp_path):
    (tmp_path / "categories.toml").write_text(
        '[speeds]\ngeneral = 1.2\nelderly = 0.8\n[[category]]\nid = "pharmacy"\ntier = 10\nbasic = true\n', encoding="utf-8")
    cfg = load_config(**read_rule_files(tmp_path)["categories.toml"])
    assert cfg.ids == ["pharmacy"] and cfg.speeds == {"general": 1.2, "elderly": 0.8}


def test_default_categories_follow_the_issue():
    assert CONFIG.ids == ["community_service", "elderly_daycare", "health_station", "kindergarten", "canteen", "shop",
                          "small_sports", "primary_school", "market", "medium_sports", "middle_school", "health_centre",
                          "nursing_home", "culture_centre", "street_office", "large_sports", "mall"]
    assert {c.tier for c in CONFIG.categories} == {5, 10, 15}


@pytest.mark.parametrize("text,message", [
    ("[[category]]\nid = 'x'\n", "missing or bad field"),
    ("[[category]]\nid = 'x'\ntier = 0\n", "tier must be a positive"),
    ("nonsense = [", "not a valid TOML"),
    ("[speeds]\ngeneral = 1.0\n", "declares no [[category]]"),
])
def test_bad_categories_files(tmp_path, text, message):
    (tmp_path / "categories.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(**read_rule_files(tmp_path)["categories.toml"])


def test_walks_beyond_the_reporting_horizon_have_no_minutes():
    from dataclasses import replace

    lines = [[(0, 0), (3000, 0)]]
    fac = _facilities([("F", "shop", 0, 0)])
    origins = Origins.simple(np.array([1700.0, 1900.0]), np.array([0.0, 0.0]))
    model = ReachModel.build(_roads(lines), fac, origins, config=CONFIG)
    assert CONFIG.horizon_min == 30 and CONFIG.horizon_m == 30 * 60 * max(CONFIG.speeds.values())
    minutes = model.origin_minutes("shop")  # 1.0 m/s: 28.3 and 31.7 minutes
    assert minutes[0] == pytest.approx(1700 / 60) and np.isnan(minutes[1])
    wider = ReachModel.build(_roads(lines), fac, origins, config=replace(CONFIG, horizon_min=40.0))
    assert wider.origin_minutes("shop")[1] == pytest.approx(1900 / 60)


def test_a_horizon_shorter_than_a_tier_is_refused(tmp_path):
    from geo.reach import load_config

    text = resources_text().replace("minutes = 30", "minutes = 10")
    (tmp_path / "categories.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="horizon"):
        load_config(**read_rule_files(tmp_path)["categories.toml"])


def resources_text() -> str:
    from importlib import resources

    return resources.files("geo").joinpath("categories.toml").read_text(encoding="utf-8")


def test_the_life_circle_reaches_the_longest_tier_at_the_fastest_speed():
    # 15 minutes at 1.0 m/s: the walk round a settlement whose empty H3 cells are kept (docs/reach.md)
    assert CONFIG.life_circle_m == 900.0
