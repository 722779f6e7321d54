"""``gridcover sites SOURCE --category ID``: propose where to add a service of one category (sites_CATEGORY.geojson
and .json in ``--out``).
"""

from __future__ import annotations

import argparse

import numpy as np

from gridcover.cli.options import add_as_of, add_quiet, progress_of


def register(subparsers) -> None:
    """Add the ``sites`` subcommand."""
    sites = subparsers.add_parser("sites", help="propose where to add a service of one category")
    sites.add_argument("source", help="data folder, or the output folder / workspace.gpkg of analyze")
    sites.add_argument("--category", required=True, help="facility category id, e.g. elderly_daycare")
    sites.add_argument("--k", type=int, default=3, help="number of sites (default 3)")
    sites.add_argument("--candidates", help="candidate points (GeoJSON/GeoPackage, WGS-84); default: every building")
    add_as_of(sites)
    sites.add_argument("--out", default="out/sites", help="output folder (default out/sites)")
    add_quiet(sites, help=None)
    sites.set_defaults(func=cmd_sites)


def cmd_sites(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import geopandas as gpd
    import shapely

    from gridcover.io.paths import check_output_file, reads_of, write_atomically
    from gridcover.engines.single import analyze
    from geo.siting import plan_sites

    source = Path(args.source)
    reads = reads_of(source, "data")
    if args.candidates:
        reads.append((f"the candidates {args.candidates}", args.candidates))
    out = Path(args.out)
    for suffix in ("geojson", "json"):  # before the analysis
        check_output_file(out / f"sites_{args.category}.{suffix}", reads=reads, option="--out")
    if source.is_dir() and (source / "workspace.gpkg").is_file():
        source = source / "workspace.gpkg"
    progress = progress_of(args)
    analysis = analyze(source, reference_date=args.as_of, progress=progress)
    analysis.reach_model.config.category(args.category)  # ConfigError naming the known ones
    candidates = None
    if args.candidates:
        from gridcover.io.folder import _read_vector

        frame = _read_vector(Path(args.candidates), Path(args.candidates).name, None)
        if frame.crs is None:
            frame = frame.set_crs(4326)
        pts = frame.to_crs(analysis.data.metric_crs).geometry.representative_point()
        ids = frame["id"].astype(str).to_numpy() if "id" in frame.columns else np.arange(len(frame)).astype(str)
        candidates = (ids, pts.x.to_numpy(), pts.y.to_numpy())
    rows, report = plan_sites(analysis, args.category, args.k, candidates=candidates)
    out.mkdir(parents=True, exist_ok=True)
    sites = gpd.GeoDataFrame(rows.drop(columns=["scorecard_changes", "still_missing", "x", "y"]),
                             geometry=shapely.points(rows["x"], rows["y"]) if len(rows) else [],
                             crs=analysis.data.metric_crs).to_crs(4326)
    write_atomically(out / f"sites_{args.category}.geojson",
                     lambda tmp: sites.to_file(tmp, driver="GeoJSON", engine="pyogrio"), suffix=".geojson")
    text = json.dumps(report, ensure_ascii=False, indent=1, default=str)
    write_atomically(out / f"sites_{args.category}.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    print(f"{args.category}: {len(rows)} sites ({report['method']}) bring {report['covered_households']:,} of "
          f"{report['demand_households']:,} households missing it within its tier; weight {report['covered_weight']:,} "
          f"of at most {report['upper_bound_weight']:,}")
    for r in report["sites"]:
        print(f"  {r['order']}. {r['candidate']}: +{r['households_now_within_tier']} households "
              f"({r['special_group_members_now_within_tier']} special-group), blind spots {r['blind_spots_before']} -> "
              f"{r['blind_spots_after']}, {len(r['scorecard_changes'])} scorecard changes")
        print(f"     {r['explanation_en']}")
    print(f"wrote {out / f'sites_{args.category}.geojson'} and .json")
    return 0
