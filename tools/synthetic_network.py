"""Roads, gates and facilities for a synthetic district (``tools.synthetic``), for reach at any size.

Street centre lines run along the edges of the district's blocks (each block's box grown by half the
street width), one straight segment per block edge so that lines meet at shared vertices; facilities
of every life-circle category stand just inside a block edge, more of the short-tier ones; a share of
the estates get one gate in the middle of their south side. All vectorised, seeded.

Example
-------
>>> layers = make_district(households=20_000, buildings=2_000, grids=60, seed=1)
>>> layers.update(street_network(layers, seed=1))
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.reach import load_config
from tools.synthetic import METRIC_CRS, OUTPUT_CRS, STREET_HALF_WIDTH_M

#: Blocks per facility, by tier (minutes): short tiers are dense, 15-minute services sparse.
BLOCKS_PER_FACILITY = {5: 6, 10: 25, 15: 70}
#: Share of estates with a gate (the others are entered anywhere along their edge).
GATED_SHARE = 0.3


def street_network(layers: dict[str, gpd.GeoDataFrame], *, seed: int = 0,
                   unknown_category: bool = False) -> dict[str, gpd.GeoDataFrame]:
    """``roads``, ``facilities`` and ``gates`` (WGS-84) for the blocks (estates) of a synthetic district.

    ``unknown_category`` adds one facility of a category that categories.toml does not declare.
    """
    rng = np.random.default_rng(seed + 7)
    estates = layers["estates"].to_crs(METRIC_CRS)
    b = np.round(shapely.bounds(estates.geometry.to_numpy()), 3)
    x0, y0 = b[:, 0] - STREET_HALF_WIDTH_M, b[:, 1] - STREET_HALF_WIDTH_M
    x1, y1 = b[:, 2] + STREET_HALF_WIDTH_M, b[:, 3] + STREET_HALF_WIDTH_M
    # four edges per cell; neighbours share theirs, so keep each edge once
    edges = np.concatenate([np.column_stack([x0, y0, x1, y0]), np.column_stack([x1, y0, x1, y1]),
                            np.column_stack([x0, y1, x1, y1]), np.column_stack([x0, y0, x0, y1])])
    edges = np.unique(np.round(edges, 2), axis=0)
    roads = gpd.GeoDataFrame({"id": [f"R{i + 1:06d}" for i in range(len(edges))], "highway": "residential"},
                             geometry=shapely.linestrings(edges.reshape(-1, 2, 2)), crs=METRIC_CRS)

    config = load_config()
    n_blocks = len(estates)
    rows = []
    for cat in config.categories:
        n = max(1, n_blocks // BLOCKS_PER_FACILITY.get(cat.tier, 30))
        block = rng.integers(0, n_blocks, n)
        side = rng.integers(0, 4, n)
        t = rng.uniform(0.1, 0.9, n)
        inset = rng.uniform(3.0, 8.0, n)
        bx0, by0, bx1, by1 = b[block, 0], b[block, 1], b[block, 2], b[block, 3]
        fx = np.select([side == 0, side == 1, side == 2], [bx0 + t * (bx1 - bx0), bx1 - inset, bx0 + t * (bx1 - bx0)],
                       bx0 + inset)
        fy = np.select([side == 0, side == 1, side == 2], [by0 + inset, by0 + t * (by1 - by0), by1 - inset],
                       by0 + t * (by1 - by0))
        rows.append(pd.DataFrame({"category": cat.id, "x": fx, "y": fy}))
    if unknown_category:
        rows.append(pd.DataFrame({"category": ["rocket_launch_site"], "x": [b[0, 0] + 10], "y": [b[0, 1] + 10]}))
    fac = pd.concat(rows, ignore_index=True)
    facilities = gpd.GeoDataFrame({"id": [f"F{i + 1:06d}" for i in range(len(fac))], "category": fac["category"],
                                   "name": fac["category"]}, geometry=shapely.points(fac["x"], fac["y"]),
                                  crs=METRIC_CRS)

    gated = np.flatnonzero(rng.random(n_blocks) < GATED_SHARE)
    gates = gpd.GeoDataFrame({"id": [f"GT{i + 1:06d}" for i in range(len(gated))],
                              "estate_id": estates["id"].to_numpy()[gated]},
                             geometry=shapely.points((b[gated, 0] + b[gated, 2]) / 2, b[gated, 1]), crs=METRIC_CRS)
    return {name: frame.to_crs(OUTPUT_CRS) for name, frame in
            (("roads", roads), ("facilities", facilities), ("gates", gates))}


def main(argv: list[str] | None = None) -> int:
    """Add roads.gpkg, facilities.gpkg and gates.gpkg to a folder written by ``python -m tools.synthetic``."""
    import pyogrio

    parser = argparse.ArgumentParser(prog="python -m tools.synthetic_network", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    estates = pyogrio.read_dataframe(args.folder / "estates.gpkg")
    layers = street_network({"estates": estates}, seed=args.seed)
    for name, frame in layers.items():
        path = args.folder / f"{name}.gpkg"
        if path.exists():
            path.unlink()
        pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG")
    print(", ".join(f"{len(f):,} {n}" for n, f in layers.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
