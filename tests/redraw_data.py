"""Test data of the redraw tests: small synthetic districts analysed into workspaces (cached per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from gridcover.engines.single import analyze
from gridcover.io.outputs import write_outputs
from tools.synthetic import make_district, write_district

_CACHE: dict[tuple, Path] = {}


def synthetic_workspace(root: Path, *, households: int = 3000, buildings: int = 300, grids: int = 8,
                        per_community: int = 4, seed: int = 1) -> Path:
    """A workspace folder analysed from a synthetic district (2 communities of 4 grids by default), copied
    fresh into ``root`` for each caller (tests change it)."""
    key = (households, buildings, grids, per_community, seed)
    if key not in _CACHE:
        base = Path(root).parent / f"redraw-base-{'-'.join(map(str, key))}"
        if not (base / "ws" / "workspace.gpkg").exists():
            layers = make_district(households=households, buildings=buildings, grids=grids,
                                   grids_per_community=per_community, seed=seed)
            write_district(layers, base / "data", fmt="geojson")
            write_outputs(analyze(base / "data"), base / "ws")
        _CACHE[key] = base / "ws"
    target = Path(root) / "ws"
    shutil.copytree(_CACHE[key], target)
    return target


def community_frames(*, buildings: int = 2000, seed: int = 0, max_households: int = 20):
    """One synthetic community in metric CRS with 0–``max_households`` households per building: (community,
    buildings, estates, households with building_id, persons, x, y)."""
    layers = make_district(households=1, buildings=buildings, grids=1, grids_per_community=1, seed=seed)
    m = {k: v.to_crs(32648) for k, v in layers.items() if k != "households"}
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, max_households + 1, len(m["buildings"]))
    hh = pd.DataFrame({"building_id": np.repeat(m["buildings"]["id"].to_numpy(), counts),
                       "persons": rng.integers(1, 5, int(counts.sum())), "x": np.nan, "y": np.nan})
    return m["communities"], m["buildings"], m["estates"], hh


def meanwhile(monkeypatch):
    """``later = meanwhile(monkeypatch); later(change)``: ``change()`` (another editor's commit) runs once while the
    next apply or restore computes its layers, after it was checked: the moment where two processes started
    together overlap, made certain."""
    import gridcover.services.redraw

    pending, real = [], gridcover.services.redraw.reassess

    def reassess(*args, **kwargs):
        if pending:
            pending.pop()()
        return real(*args, **kwargs)

    monkeypatch.setattr(gridcover.services.redraw, "reassess", reassess)
    return pending.append


def context_of(ws):
    """The redraw context of a workspace's stored layers (what the redraw service builds, default metric CRS)."""
    from geo.redraw import RedrawContext

    names = ("communities", "grids", "households", "buildings", "estates", "roads")
    return RedrawContext.from_frames(**{n: ws.read(n) if ws.has(n) else None for n in names}, version=ws.version)
