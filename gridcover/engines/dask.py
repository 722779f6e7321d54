"""``gridcover analyze --engine dask``: the analysis run on a Dask cluster, one task per street (街道).

The driver plans the parts (:func:`gridcover.engines.partition.plan_parts`, run as a task), sends each street's part to
a worker (:func:`gridcover.engines.partition.read_part` then :func:`geo.pipeline.local_stages`: assignment, zones,
reach, H3 cells), gathers the parts' compact per-household tables, runs :func:`geo.pipeline.global_stages`
(workload, coverage issues, shares, risk, blind spots merged across streets, scorecard, summary) and sends
each household's risk back to its part, which writes its rows. The driver then assembles the output
folder of the single-process run from the parts' files, streaming (households never pass through it
whole), and moves it into place atomically. docs/dask.md says why the outputs are the same.

Example
-------
>>> analysis, out = analyze_dask("data/city", "out/city")                 # a local cluster (2 workers)
>>> analysis, out = analyze_dask("data/city", "out/city", scheduler="tcp://10.0.0.5:8786")
"""

from __future__ import annotations

import os
import pickle
import shutil
import time
import warnings
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyogrio

from geo.errors import GridcoverError
from geo.lifecircle import DEFAULT_H3_RESOLUTION
from geo.load import LAYER_ORDER, Dataset
from gridcover.engines.partition import Plan, plan_parts, read_part, whole_network
from gridcover.io.paths import prepare_output_folder, reads_of, temp_dir
from geo.pipeline import (DEFAULT_WINDOW_WEEKS, RISK_OUTPUT_COLUMNS, Analysis, PartTables, RunInfo, _Clock,
                          add_risk_columns, case_households, global_stages, local_stages, locate_case_layer,
                          unknown_category_warnings)
from geo.reach import CONFIG_NAME as REACH_CONFIG, load_config
from gridcover.io.outputs import (OUTPUT_LAYERS, PARTS_FOLDER, _write_geojson, _write_gpkg_layer, write_geoparquet,
                                  write_output_folder)
from geo.settings import Settings

#: Workers of the default local cluster: one single-threaded process per core of this 2-core machine
#: (the stages are numpy/GEOS code that holds the GIL; processes, not threads, run them side by side).
LOCAL_WORKERS = max(1, min(os.cpu_count() or 1, 2))
#: Input layers the network task writes into the workspace (read whole there anyway).
CONTEXT_LAYERS = ("estates", "gates", "facilities", "roads")
#: Without ``assemble`` given, the single-file outputs (households.geojson, the workspace's household and
#: building layers) are assembled for a city of at most this many households (docs/dask.md).
ASSEMBLE_UP_TO = 1_000_000
#: The households' columns a scorecard snapshot names the red ones by (gridcover.io.history.run_snapshot).
SNAPSHOT_COLUMNS = ("id", "risk", "grid_id", "community_id", "street_id")


def local_cluster(*, workers: int = LOCAL_WORKERS):
    """A dask.distributed LocalCluster for this machine: ``workers`` processes of one thread, memory shared
    equally, no dashboard."""
    from dask.distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                        memory_limit="auto", silence_logs=40)


# ---- tasks (run on workers) -------------------------------------------------------------------

def _plan_task(path: str, crs, settings, h3_resolution: int, stored_cases: pd.DataFrame | None = None) -> Plan:
    plan = plan_parts(path, crs=crs, settings=settings, h3_resolution=h3_resolution)
    if stored_cases is not None and len(stored_cases):
        from gridcover.engines.single import with_stored_cases

        merged, _ = with_stored_cases(plan.cases, stored_cases, metric_crs=plan.metric_crs)
        plan = replace(plan, cases=merged)
    return plan


def plan_brief(plan: Plan, *, given: str | None = None) -> Plan:
    """What the driver keeps of a plan: the small layers, counts, sources and settings, without the arrays
    that grow with the city (per-household feature ids and positions, seed cells, visit records). ``given``:
    the data path as the user spelled it, which the sources are named by (as in a single-process run)."""
    empty = [None] * plan.n_parts
    spell = (lambda text: text.replace(plan.path, given)) if given is not None else (lambda text: text)
    return replace(plan, household_fids=empty, household_order=empty, building_fids=empty, building_order=empty,
                   named_building_fids=empty, seed_cells=None, visits=None, estate_fid=None, gate_fids=None,
                   sources={k: spell(v) for k, v in plan.sources.items()}, path=given or plan.path,
                   warnings=[spell(w) for w in plan.warnings])


def _network_task(plan: Plan, parts_dir: str):
    stats, components, unknown, warnings, counts = whole_network(plan)
    from gridcover.io.folder import read_layers

    context = read_layers(plan.path, [n for n in CONTEXT_LAYERS if n in plan.sources], crs=plan.crs,
                          metric_crs=plan.metric_crs)
    gpkg = Path(parts_dir) / "context.gpkg"
    for name, frame in context.layers.items():
        _write_gpkg_layer(frame, gpkg, name)
    if plan.visits is not None:  # the workspace's visits layer, written here: the driver does not hold it
        _write_gpkg_layer(plan.visits, gpkg, "visits")
    return stats, components, unknown, warnings + context.warnings, counts


def _part_task(plan: Plan, p: int, components, parts_dir: str, as_of: date | None = None,
               window_weeks: int = DEFAULT_WINDOW_WEEKS, assemble: bool = True) -> dict:
    started = time.perf_counter()
    data, owned_b, b_order, area = read_part(plan, p)
    if plan.visits is not None:  # the records of this part's households, judged with them
        mine = plan.visits["household_id"].isin(set(data.layers["households"]["id"].astype(str))).to_numpy()
        data.layers["visits"] = plan.visits[mine].reset_index(drop=True)
    read_s = time.perf_counter() - started
    owner = plan.owner
    part = local_stages(data, h3_resolution=plan.h3_resolution, owned_buildings=owned_b, building_order=b_order,
                        keep_cell=lambda cells: owner.of_strings(cells) == p, area_wgs84=area,
                        order=plan.household_order[p], component_of=components, seed_cells=plan.seed_cells,
                        as_of=as_of, window_weeks=window_weeks)
    folder = Path(parts_dir)
    with open(folder / f"{p:05d}.pkl", "wb") as fh:
        pickle.dump(part.households, fh, protocol=pickle.HIGHEST_PROTOCOL)
    gpkg = folder / f"{p:05d}.gpkg"
    if assemble and len(data.layers["households"]):  # the workspace's input layers, for the assembly
        _write_gpkg_layer(data.layers["households"], gpkg, "input_households")
    if assemble and owned_b is not None and owned_b.any():
        _write_gpkg_layer(data.layers["buildings"][owned_b], gpkg, "buildings")
    homes = None
    if plan.cases is not None:  # what locating the cases needs of these households, with their input positions
        homes = case_households(part.households, part.table).assign(order=plan.household_order[p])
    return {"part": p, "table": part.table, "buildings": part.buildings, "split_buildings": part.split_buildings,
            "case_households": homes,
            "cells": part.cells, "origins": part.origins, "fringe_source": part.fringe_source,
            "warnings": data.warnings, "repaired": data.repaired, "method": part.model.method,
            "seconds": {"read": round(read_s, 3), "total": round(time.perf_counter() - started, 3)}}


def _part_brief(part: dict) -> dict:
    """What the driver is told of a part: its size, warnings, repairs and times (no per-household row)."""
    return {"part": part["part"], "households": len(part["table"]), "warnings": part["warnings"],
            "repaired": part["repaired"], "seconds": part["seconds"]}


def _cases_task(plan: Plan, parts: list) -> pd.DataFrame:
    """The cases placed on the grids (:func:`geo.pipeline.locate_case_layer`) with the whole buildings and
    estates read here, as the lookup index reads them, and every part's households in input order (the same
    address index, hence the same answers, as one process)."""
    from gridcover.io.folder import read_layers

    homes = [part["case_households"] for part in parts]
    households = pd.concat(homes, ignore_index=True).sort_values("order", kind="stable").reset_index(drop=True)
    context = read_layers(plan.path, [n for n in ("buildings", "estates") if n in plan.sources], crs=plan.crs,
                          metric_crs=plan.metric_crs)
    layers = {**plan.whole, **context.layers, "cases": plan.cases}
    return locate_case_layer(layers, households.drop(columns="order"), metric_crs=plan.metric_crs)


def _global_task(plan: Plan, parts: list, network: tuple, cases, *, h3_resolution: int, reference_date: date,
                 window_weeks: int) -> dict:
    """The global stages on one worker, from the parts' compact tables there: the city-wide layers (grids,
    coverage issues, cells, blind spots, scorecard, summary, cases: per street, community, grid and cell,
    never per household) for the driver, and each part's households' risk for its write task."""
    clock = _Clock(None)
    city, risk = _run_global(plan, parts, network, h3_resolution=h3_resolution, reference_date=reference_date,
                             clock=clock, window_weeks=window_weeks, cases=cases)
    bounds = np.r_[0, np.cumsum([len(part["table"]) for part in parts])]
    return {"city": city, "risk": [risk.iloc[bounds[p]:bounds[p + 1]] for p in range(len(parts))]}


def _city_of(result: dict) -> dict:
    return result["city"]


def _risk_of(result: dict, p: int) -> pd.DataFrame:
    return result["risk"][p]


def part_folder(root: Path, layer: str, street_id: str) -> Path:
    """A part's folder in the partitioned output: ``root/parts/<layer>/street=<street id>`` (Hive-style; the id
    percent-encoded where it holds a character a file name cannot).

    Examples
    --------
    >>> part_folder(Path("out"), "households", "510105001000").as_posix()
    'out/parts/households/street=510105001000'
    """
    return Path(root) / PARTS_FOLDER / layer / f"street={quote(str(street_id), safe='')}"


def _write_task(parts_dir: str, p: int, risk: pd.DataFrame, *, street_id: str, assemble: bool) -> dict:
    """A part's households with their risk written (GeoJSON and GeoPackage parts for the assembly, else the
    partitioned GeoParquet); returns their count and the red ones a scorecard snapshot names."""
    folder = Path(parts_dir)
    with open(folder / f"{p:05d}.pkl", "rb") as fh:
        households = pickle.load(fh)
    (folder / f"{p:05d}.pkl").unlink()
    if not len(households):
        return {"households": 0, "red": None}
    out = add_risk_columns(households, risk.reset_index(drop=True))
    if assemble:
        _write_geojson(out, folder / f"{p:05d}.households.geojson")
        _write_gpkg_layer(out, folder / f"{p:05d}.gpkg", "households")
    else:
        write_geoparquet(out, part_folder(folder, "households", street_id) / "part.parquet")
    red = (out["risk"].astype(str) == "red").to_numpy()
    return {"households": len(out), "red": pd.DataFrame(out.loc[red, list(SNAPSHOT_COLUMNS)]).reset_index(drop=True)}


# ---- the driver -------------------------------------------------------------------------------

def analyze_dask(path: str | os.PathLike, out_dir: str | os.PathLike, *, crs: str | None = None,
                 settings: Settings | None = None, h3_resolution: int = DEFAULT_H3_RESOLUTION,
                 reference_date: date | None = None, scheduler: str | None = None,
                 progress: Callable[[str], None] | None = None,
                 extra: Callable[[Analysis], list] | None = None, workers: int = LOCAL_WORKERS,
                 window_weeks: int = DEFAULT_WINDOW_WEEKS, history=None,
                 stored_cases: pd.DataFrame | None = None, assemble: bool | None = None) -> tuple[Analysis, Path]:
    """Analyse a data folder on a Dask cluster and write the outputs of ``analyze`` + ``write_outputs``.

    ``scheduler`` is a dask.distributed scheduler address (its workers must see ``path`` and the output
    folder at the same paths, resolved here to absolute ones, and have gridcover installed); without it a
    local cluster of ``workers`` processes runs. ``extra(analysis)`` gives more writers ``f(folder)`` (the
    CLI's report.html). A visits layer is read whole by the planner and each part judges its own households'
    records (``reference_date``, ``window_weeks``), as the single-process run does. ``assemble``: write the
    single-file outputs (the single-process run's folder); False: the households as partitioned GeoParquet in
    ``OUT/parts`` instead; None: assemble up to :data:`ASSEMBLE_UP_TO` households. Returns an
    :class:`~geo.pipeline.Analysis` holding the city-wide layers (grids, cells, blind spots, scorecard,
    summary; not the households, which only the output files hold) and the output folder. ``stored_cases``:
    the cases of the case API (:func:`gridcover.engines.single.with_stored_cases`), added to the folder's.
    """
    settings = settings or Settings()
    if settings.derive_fringe:
        msg = "--derive-fringe is not available with --engine dask yet (the derivation needs every building at once)"
        raise GridcoverError(msg)
    clock = _Clock(progress)
    out_dir = prepare_output_folder(out_dir, reads=reads_of(path, "data"))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    parts_dir = temp_dir(out_dir, "parts")
    cluster = None
    try:
        client, cluster = _connect(scheduler, workers=workers)
        with client:
            if progress:
                where = scheduler or f"a local cluster of {len(client.scheduler_info()['workers'])} workers"
                progress(f"[   0.0s] planning the parts of {path} on {where}")
            run = _Run(client=client, parts_dir=parts_dir, clock=clock, h3_resolution=h3_resolution,
                       window_weeks=window_weeks)
            analysis, red, assembled = run.all(path, crs=crs, settings=settings, reference_date=reference_date,
                                               stored_cases=stored_cases, assemble=assemble)
        out = write_parted_outputs(analysis, out_dir, parts_dir=parts_dir, n_parts=len(red),
                                   extra=extra(analysis) if extra else (), progress=progress, history=history,
                                   red=red, assemble=assembled)
        clock.step("write", f"{'assembled' if assembled else 'wrote the partitioned'} {out}")
        return analysis, out
    finally:
        if cluster is not None:
            cluster.close()
        shutil.rmtree(parts_dir, ignore_errors=True)


def _connect(scheduler: str | None, *, workers: int):
    """A client of the cluster at ``scheduler``, else of a new local cluster (returned too, to be closed)."""
    from dask.distributed import Client

    if scheduler:
        return Client(scheduler), None
    cluster = local_cluster(workers=workers)
    return Client(cluster), cluster


class _Run:
    """One analysis on a cluster, step by step; the driver holds futures, the plan's brief and the city-wide
    results, never a per-household table."""

    def __init__(self, *, client, parts_dir: Path, clock: _Clock, h3_resolution: int, window_weeks: int) -> None:
        self.client, self.parts_dir, self.clock = client, parts_dir, clock
        self.h3_resolution, self.window_weeks = h3_resolution, window_weeks

    def all(self, path, *, crs, settings, reference_date, stored_cases, assemble):
        """Plan, parts, cases, global stages and the parts' writes: the analysis, the red households of each
        part (for the snapshot) and whether the single-file outputs are to be assembled."""
        client, clock = self.client, self.clock
        resolved = str(Path(path).resolve())  # the workers resolve nothing: they may run in another folder
        plan_f = client.submit(_plan_task, resolved, crs, settings, self.h3_resolution, stored_cases, pure=False)
        plan = client.submit(plan_brief, plan_f, given=str(Path(path)), pure=False).result()
        n = plan.n_parts
        households = int(plan.counts.get("households", 0))
        assemble = households <= ASSEMBLE_UP_TO if assemble is None else bool(assemble)
        reference_date = reference_date or plan.settings.as_of or date.today()
        clock.step("plan", f"{n} parts (streets); read {', '.join(f'{v:,} {k}' for k, v in plan.counts.items())}")
        parts, network, briefs = self.parts(plan_f, n, as_of=reference_date, assemble=assemble)
        clock.step("parts", f"assigned, zoned and measured {sum(b['households'] for b in briefs):,} households "
                            f"in {n} parts")
        cases = None
        if plan.cases is not None:
            cases = client.submit(_cases_task, plan_f, parts, pure=False)
        result = client.submit(_global_task, plan_f, parts, network, cases, h3_resolution=self.h3_resolution,
                               reference_date=reference_date, window_weeks=self.window_weeks, pure=False)
        risks = [client.submit(_risk_of, result, p, pure=False) for p in range(n)]
        city = client.submit(_city_of, result, pure=False).result()
        del result, parts, cases
        analysis = _analysis_of(plan, city, resolved=resolved, clock=clock)
        clock.step("global", f"found {len(analysis.blindspots):,} blind spots; "
                             f"{analysis.summary['risk']['households_by_colour']['red']:,} red households")
        streets = plan.whole["streets"]["id"].astype(str).to_numpy()
        writes = [client.submit(_write_task, str(self.parts_dir), p, risks[p], street_id=streets[p],
                                assemble=assemble, pure=False) for p in range(n)]
        done = client.gather(writes)
        clock.step("write parts", f"wrote {sum(d['households'] for d in done):,} households in {n} parts")
        return analysis, [d["red"] for d in done], assemble

    def parts(self, plan_f, n: int, *, as_of: date, assemble: bool):
        """Every part's local stages on the workers (the whole network's first, for its components): the
        parts' futures in part order (their results stay on the workers), the network's future and what the
        driver is told of each part."""
        from dask.distributed import wait

        client = self.client
        client.replicate([plan_f])
        network = client.submit(_network_task, plan_f, str(self.parts_dir), pure=False)
        components = client.submit(lambda n: n[1], network, pure=False)
        parts = [client.submit(_part_task, plan_f, p, components, str(self.parts_dir), as_of, self.window_weeks,
                               assemble, pure=False, priority=-p) for p in range(n)]
        briefs = client.gather([client.submit(_part_brief, f, pure=False) for f in parts])
        wait(network)
        return parts, network, briefs


def _analysis_of(plan: Plan, city: dict, *, resolved: str, clock: _Clock) -> Analysis:
    """The driver's Analysis: the plan's small layers and the city-wide results (no households)."""
    layers = dict(plan.whole)
    if plan.cases is not None:
        layers["cases"] = plan.cases
    data = Dataset(layers=layers, metric_crs=plan.metric_crs, sources=plan.sources, source_crs=plan.source_crs,
                   missing_optional=plan.missing_optional, warnings=[], repaired=city["repaired"],
                   settings=plan.settings, folder=plan.folder, configs=plan.configs)
    summary = city["summary"]
    summary["sources"] = plan.sources
    warnings = [w.replace(resolved, plan.path) for w in city["warnings"]]  # files named as the user named them
    summary["warnings"] = data.warnings = warnings
    summary["timings_s"] = {**clock.timings, **summary.get("timings_s", {})}  # the global stages' on the worker
    clock.timings = summary["timings_s"]
    return Analysis(data=data, households=None, grids=city["grids"], coverage_issues=city["coverage_issues"],
                    building_grid=None, summary=summary, timings=clock.timings, h3_reach=city["cells"],
                    blindspots=city["blindspots"], scorecard=city["scorecard"], cases=city["cases"])


def _run_global(plan: Plan, results: list[dict], network: tuple, *, h3_resolution: int, reference_date: date,
                clock: _Clock, window_weeks: int = DEFAULT_WINDOW_WEEKS,
                cases: pd.DataFrame | None = None) -> tuple[dict, pd.DataFrame]:
    """The global stages on the parts' tables: the city-wide results (no households) and each household's risk
    columns, in part order."""
    stats, _, unknown, net_warnings, counts = network
    config = load_config(**plan.configs.get(REACH_CONFIG, {}))
    warnings = list(plan.warnings)
    for r in results:
        warnings += r["warnings"]
    warnings += net_warnings + unknown_category_warnings(unknown, config)
    warnings = list(dict.fromkeys(warnings))
    repaired = _unique_repairs(plan.repaired + [item for r in results for item in r["repaired"]])
    run = RunInfo(input_counts={n: plan.counts[n] for n in LAYER_ORDER if n in plan.counts},
                  missing_optional=plan.missing_optional, sources=plan.sources, source_crs=plan.source_crs,
                  metric_crs=plan.metric_crs, warnings=warnings, repaired=repaired, settings=plan.settings,
                  folder=plan.folder, configs=plan.configs)
    fringe = next((r["fringe_source"] for r in results if len(r["table"])), results[0]["fringe_source"])
    parts = PartTables(tables=[r["table"] for r in results], buildings=[r["buildings"] for r in results],
                       split_buildings=[r["split_buildings"] for r in results],
                       cells=[r["cells"] for r in results], origins=[r["origins"] for r in results],
                       network_stats=stats, facilities_unknown=unknown, fringe_source=fringe, facility_counts=counts)
    result = global_stages(run, parts, city=plan.whole, config=config, h3_resolution=h3_resolution,
                           reference_date=reference_date, clock=clock, window_weeks=window_weeks, cases=cases)
    city = {"grids": result.grids, "coverage_issues": result.coverage_issues, "cells": result.cells,
            "blindspots": result.blindspots, "scorecard": result.scorecard, "summary": result.summary,
            "cases": result.cases, "warnings": run.warnings, "repaired": repaired}
    return city, result.household_risk[list(RISK_OUTPUT_COLUMNS)]


def _unique_repairs(items: list[dict]) -> list[dict]:
    seen, out = set(), []
    for item in items:
        key = (item.get("layer"), str(item.get("id")), item.get("problem"))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


# ---- assembling the output folder ----------------------------------------------------------------

_HEADER_END = '"features": [\n'
_FOOTER = "\n]\n}\n"


def concat_geojson(parts: list[Path], target: Path, *, chunk: int = 1 << 24) -> None:
    """One FeatureCollection from several written by the same writer (same header), streamed part by part."""
    parts = [p for p in parts if p.exists()]
    with open(target, "w", encoding="utf-8", newline="") as out:
        first = True
        header = None
        for path in parts:
            text = path.read_text(encoding="utf-8")
            start = text.index(_HEADER_END) + len(_HEADER_END)
            if header is None:
                header = text[:start]
                out.write(header)
            end = text.rindex(_FOOTER)
            body = text[start:end].strip("\n")
            if body:
                if not first:
                    out.write(",\n")
                for i in range(0, len(body), chunk):
                    out.write(body[i:i + chunk])
                first = False
            del text, body
        if header is None:
            out.write('{\n"type": "FeatureCollection",\n' + _HEADER_END)
        out.write(("\n" if not first else "\n") + "]\n}\n")


def _append_layer(source: Path, layer: str, gpkg: Path, target_layer: str) -> int:
    if not source.exists() or layer not in {str(r[0]) for r in pyogrio.list_layers(source)}:
        return 0
    frame = pyogrio.read_dataframe(source, layer=layer)
    append = gpkg.exists() and target_layer in {str(r[0]) for r in pyogrio.list_layers(gpkg)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(frame, gpkg, layer=target_layer, driver="GPKG", append=append)
    return len(frame)


def write_parted_outputs(analysis: Analysis, out_dir: Path, *, parts_dir: Path, n_parts: int, extra=(),
                         progress=None, history=None, red: list | None = None, assemble: bool = True) -> Path:
    """The output folder of ``gridcover.io.outputs.write_outputs`` from the driver's city-wide layers and the parts'
    files, written beside ``out_dir`` and moved into place at the end. ``assemble``: households.geojson and the
    workspace's households, input_households and buildings concatenated from the parts, streaming; else the
    parts' GeoParquet moved into ``OUT/parts`` and those layers left out of the workspace. ``red``: each
    part's red households (the snapshot's)."""
    part_files = [parts_dir / f"{p:05d}.gpkg" for p in range(n_parts)]

    def write_inputs(gpkg: Path) -> None:
        for name in LAYER_ORDER:
            target = f"input_{name}" if name in OUTPUT_LAYERS else name
            if name in analysis.data.layers:
                _write_gpkg_layer(analysis.data.layers[name], gpkg, target)
            elif name in ("households", "buildings"):
                for path in part_files:
                    _append_layer(path, target, gpkg, target)
            elif name in (*CONTEXT_LAYERS, "visits"):
                _append_layer(parts_dir / "context.gpkg", name, gpkg, target)
        for path in part_files:
            _append_layer(path, "households", gpkg, "households")

    def write_households(path: Path) -> None:
        if assemble:
            concat_geojson([parts_dir / f"{p:05d}.households.geojson" for p in range(n_parts)], path)
        elif (parts_dir / PARTS_FOLDER).is_dir():
            (parts_dir / PARTS_FOLDER).rename(path.parent / PARTS_FOLDER)

    frames = [r for r in (red or []) if r is not None and len(r)]
    snapshot = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({c: [] for c in SNAPSHOT_COLUMNS})
    return write_output_folder(analysis, out_dir, write_households=write_households, write_inputs=write_inputs,
                               extra=extra, progress=progress, history=history, snapshot_households=snapshot)
