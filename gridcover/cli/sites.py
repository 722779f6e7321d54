"""``gridcover sites SOURCE --category ID|NAME``: propose where to add a service of one category (sites_CATEGORY.geojson
and .json in ``--out``).

The category is its id or its Chinese or English name in ``categories.toml`` (养老院, 日间照料中心, kindergarten);
each site is named by its building (name, address, estate) where it is one, with WGS-84 lon/lat and its id.
"""

from __future__ import annotations

import argparse

import numpy as np

from gridcover.cli.options import add_as_of, add_quiet, progress_of


def register(subparsers) -> None:
    """Add the ``sites`` subcommand."""
    sites = subparsers.add_parser("sites", help="propose where to add a service of one category")
    sites.add_argument("source", help="data folder, or the output folder / workspace.gpkg of analyze")
    sites.add_argument("--category", required=True, help="facility category: its id or its name in categories.toml, "
                                                          "e.g. elderly_daycare, 日间照料中心, 养老院")
    sites.add_argument("--k", type=int, default=3, help="number of sites (default 3)")
    sites.add_argument("--candidates", help="candidate points (GeoJSON/GeoPackage, WGS-84); default: every building")
    add_as_of(sites, help="the day visits are judged against, as for analyze (default: today)")
    sites.add_argument("--out", default="out/sites", help="output folder (default out/sites)")
    add_quiet(sites, help="no progress lines of the analysis")
    sites.set_defaults(func=cmd_sites)


def cmd_sites(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import geopandas as gpd
    import shapely

    from gridcover.io.paths import check_output_file, reads_of, write_atomically
    from gridcover.engines.single import analyze
    from geo.errors import ConfigError
    from geo.reach import load_config
    from geo.siting import find_category, plan_sites

    try:  # the built-in categories name the output files before the analysis; a data folder's own ones after it
        category = find_category(load_config(), args.category).id
    except ConfigError:
        category = args.category
    source = Path(args.source)
    reads = reads_of(source, "data")
    if args.candidates:
        reads.append((f"the candidates {args.candidates}", args.candidates))
    out = Path(args.out)
    for suffix in ("geojson", "json"):  # before the analysis
        check_output_file(out / f"sites_{category}.{suffix}", reads=reads, option="--out")
    if source.is_dir() and (source / "workspace.gpkg").is_file():
        source = source / "workspace.gpkg"
    progress = progress_of(args)
    analysis = analyze(source, reference_date=args.as_of, progress=progress)
    found = find_category(analysis.reach_model.config, args.category)  # ConfigError naming the known ones
    if found.id != category:
        category = found.id
        for suffix in ("geojson", "json"):
            check_output_file(out / f"sites_{category}.{suffix}", reads=reads, option="--out")
    candidates = None
    if args.candidates:
        from gridcover.io.folder import _read_vector

        frame = _read_vector(Path(args.candidates), Path(args.candidates).name, None)
        if frame.crs is None:
            frame = frame.set_crs(4326)
        pts = frame.to_crs(analysis.data.metric_crs).geometry.representative_point()
        ids = frame["id"].astype(str).to_numpy() if "id" in frame.columns else np.arange(len(frame)).astype(str)
        candidates = (ids, pts.x.to_numpy(), pts.y.to_numpy())
    rows, report = plan_sites(analysis, category, args.k, candidates=candidates)
    out.mkdir(parents=True, exist_ok=True)
    sites = gpd.GeoDataFrame(rows.drop(columns=["scorecard_changes", "still_missing"]),
                             geometry=shapely.points(rows["lon"], rows["lat"]) if len(rows) else [], crs=4326)
    write_atomically(out / f"sites_{category}.geojson",
                     lambda tmp: sites.to_file(tmp, driver="GeoJSON", engine="pyogrio"), suffix=".geojson")
    text = json.dumps(report, ensure_ascii=False, indent=1, default=str)
    write_atomically(out / f"sites_{category}.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    print(f"{category} ({found.name_zh}): {len(rows)} sites ({report['method']}) bring "
          f"{report['covered_households']:,} of {report['demand_households']:,} households missing it within its "
          f"tier; weight {report['covered_weight']:,} of at most {report['upper_bound_weight']:,}")
    for r in report["sites"]:
        print(f"  {r['order']}. {site_label(r)} at lon {r['lon']:.6f}, lat {r['lat']:.6f} (WGS-84): "
              f"+{r['households_now_within_tier']} households ({r['special_group_members_now_within_tier']} "
              f"special-group), blind spots {r['blind_spots_before']} -> {r['blind_spots_after']}, "
              f"{len(r['scorecard_changes'])} scorecard changes")
        print(f"     {r['explanation_en']}")
    print(f"wrote {out / f'sites_{category}.geojson'} and .json")
    return 0


def site_label(site: dict) -> str:
    """A site as a person names it: estate, building name and address where it is a building, and its id.

    >>> site_label({"candidate": "B00996", "building_name": "3栋", "address": "东华门街83号 宏翠府 3栋", "estate_name": "宏翠府"})
    '宏翠府 3栋 (东华门街83号 宏翠府 3栋; B00996)'
    >>> site_label({"candidate": "node-12"})
    'node-12'
    """
    name = " ".join(str(v) for v in (site.get("estate_name"), site.get("building_name")) if v)
    detail = "; ".join(str(v) for v in (site.get("address"), site["candidate"]) if v)
    return f"{name} ({detail})" if name else (f"{site['address']} ({site['candidate']})" if site.get("address")
                                             else str(site["candidate"]))
