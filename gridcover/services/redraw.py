"""The redraw of grid boundaries (网格调整) as the command line and the server both do it: check, propose, drafts,
apply, restore, compare and history, on one store.

A :class:`RedrawService` holds one workspace (:class:`gridcover.store.Workspace`, either backend) and the
redraw context of its current version (built once per version, under its own lock). Its methods take plain
arguments (ids, versions, grid frames, GeoJSON-like dicts) and return plain results (dicts, frames); they raise
typed errors: ``InputError`` for a proposal or argument that is wrong, ``WorkspaceError`` for a version or draft
that does not exist, ``ConflictError`` when another change came first. See docs/redraw.md.

Example
-------
It needs a workspace on disk (``gridcover analyze sample_geojson out/sample``), so it is not run as a
doctest (tests/test_services_redraw.py runs the same on both backends):

>>> redraw = RedrawService(open_workspace("out/sample"))  # doctest: +SKIP
>>> grids, check, notes = redraw.propose("C1", band=(300, 500))  # doctest: +SKIP
>>> version, check = redraw.apply(grids, author="王芳", reason="均衡工作量")  # doctest: +SKIP
>>> redraw.history()["current"] == version["version"]  # doctest: +SKIP
True
"""

from __future__ import annotations

import threading
from datetime import date, datetime

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.errors import InputError
from geo.gridcodes import CodePattern, fill_codes
from geo.propose import propose_grids
from geo.redraw import (RedrawContext, carry_codes, check_proposal, compare_grids, grids_after, grids_from_moves,
                        proposal_from_geojson, proposal_frame, reassess)
from geo.workload import allot_workers, band_warning, grid_workers, staffing_band, workload_weights
from gridcover.store import ConflictError, Workspace, communities_changed_since


class RedrawService:
    """The redraw operations on one workspace, with the redraw context of its current version cached.

    Parameters
    ----------
    store
        The workspace ``gridcover analyze`` wrote (GeoPackage or PostGIS).
    """

    def __init__(self, store: Workspace) -> None:
        self.store = store
        self._context: tuple[str, RedrawContext] | None = None
        self._taken: tuple[str, list[str]] | None = None
        self._lock = threading.Lock()

    # -------------------------------------------------------------- the context and the proposals
    def context(self) -> RedrawContext:
        """The redraw context of the workspace's current version (built once per version).

        Returns
        -------
        RedrawContext
            The current grids, households, buildings and estates in a metric CRS.
        """
        tag = self.store.tag
        hit = self._context
        if hit and hit[0] == tag:
            return hit[1]
        with self._lock:
            hit = self._context
            if hit and hit[0] == tag:
                return hit[1]
            store = self.store
            metric = store.summary().get("metric_crs") or None
            frames = {name: store.read(name) if store.has(name) else None
                      for name in ("communities", "grids", "households", "buildings", "estates", "roads")}
            ctx = RedrawContext.from_frames(**frames, version=store.version, metric_crs=metric)
            self._context = (tag, ctx)
            return ctx

    def taken_codes(self) -> list[str]:
        """Every grid code the workspace ever gave (any version of its grid history, and the current grids): new
        grids are numbered after them, so a retired grid's code is never given again."""
        tag = self.store.tag
        hit = self._taken
        if hit and hit[0] == tag:
            return hit[1]
        codes: set[str] = set()
        for v in self.store.history():
            grids = self.store.grids_at(v.version)
            if "code" in grids.columns:
                codes |= set(grids["code"].dropna().astype(str))
        ctx = self.context()
        if "code" in ctx.grids.columns:
            codes |= set(ctx.grids["code"].dropna().astype(str))
        taken = sorted(codes)
        self._taken = (tag, taken)
        return taken

    def with_codes(self, grids: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[str]]:
        """The proposed grids with every missing code filled (the next free codes of each community after
        :meth:`taken_codes`; given codes kept as they are, a grid keeping a current grid's id keeps its code) and a
        note naming what was given."""
        ctx = self.context()
        grids = carry_codes(ctx, grids)
        if "code" in grids.columns and grids["code"].notna().all():
            return grids, []
        filled = fill_codes(grids, ctx.communities, pattern=CodePattern.of(ctx.settings), taken=self.taken_codes())
        made = filled["code_generated"].to_numpy(dtype=bool)
        out = filled.drop(columns="code_generated")
        if not made.any():
            return out, []
        pairs = [f"{g} {c}" for g, c in zip(out["id"][made], out["code"][made])]
        return out, [f"grid codes given to {int(made.sum())} grid(s) without one: {', '.join(pairs[:10])}"
                     + (" …" if len(pairs) > 10 else "")]

    def parse_proposal(self, doc: object) -> gpd.GeoDataFrame:
        """Grid polygons from a request or file body, in the context's metric CRS.

        Parameters
        ----------
        doc
            A GeoJSON FeatureCollection of grids (``id``, ``community_id``), or ``{"moves": [...], "grids": FC?}``.

        Returns
        -------
        geopandas.GeoDataFrame
            The proposed grids (``InputError`` naming the feature and field for anything wrong).
        """
        ctx = self.context()
        if isinstance(doc, dict) and "moves" in doc:
            base = None
            if doc.get("grids") is not None:
                base = proposal_from_geojson(doc["grids"], ctx, label="grids")
            return grids_from_moves(ctx, doc["moves"], base=base)
        return proposal_from_geojson(doc, ctx, label="proposal")

    def streets(self) -> dict[str, str]:
        """The street of every community of the current version (community id → street id), for access checks."""
        ctx = self.context()
        return dict(zip(ctx.communities["id"].astype(str), ctx.communities["street_id"].astype(str)))

    # -------------------------------------------------------------- check and propose
    def band(self, communities: set[str], band: tuple[int, int] | None = None) -> tuple[tuple[int, int], list[str]]:
        """The band of households per grid for some communities, and what to say about it.

        Without ``band``, the workload rule and the communities' current staffing give it
        (:func:`geo.workload.staffing_band`: the full-time workers of the typical staffed grid × 300, floor half of it);
        a given band wins, with a warning when its ceiling lets such a grid exceed the workload rule.

        Parameters
        ----------
        communities
            The community ids.
        band
            The band asked for (``--target``), or None.

        Returns
        -------
        tuple
            ``(floor, ceiling)`` and the note lines.
        """
        ctx = self.context()
        grids, households = ctx.grids_of(communities), ctx.households_of(communities)
        rule, workers = staffing_band(grids, households, settings=ctx.settings)
        standard = ctx.settings.households_per_worker
        if band is None:
            return rule, [f"band {rule[0]}-{rule[1]} households per grid from the workload rule: {workers} full-time "
                          f"worker(s) per grid (as the community's typical staffed grid has) x {standard} households"
                          + (f", special-group households weighted {ctx.settings.special_group_weight:g}"
                             if ctx.settings.special_group_weight != 1 else "")]
        weights = workload_weights(households, settings=ctx.settings)
        warning = band_warning(band, workers, settings=ctx.settings,
                               mean_weight=float(weights.mean()) if len(weights) else 1.0)
        return band, [warning] if warning else []

    def check(self, grids: gpd.GeoDataFrame, *, band: tuple[int, int] | None = None) -> dict:
        """Check a proposal against the current grids: validity, balance, shape and who changes grid.

        Parameters
        ----------
        grids
            The proposed grids of some communities (metric, as :meth:`parse_proposal` gives them).
        band
            Households per grid, (floor, ceiling); default from the workload rule and staffing (:meth:`band`).

        Returns
        -------
        dict
            The check (:func:`geo.redraw.check_proposal`): ``valid`` (no new problem), ``problems`` (the new
            ones), ``issues`` (every problem by name, ``new`` or ``remaining``), ``fixed``, ``summary``, ``moved`` …,
            and ``notes`` on the band (a warning when it exceeds the workload rule) and on the problems left alone
            and fixed.
        """
        band, notes = self.band(set(grids["community_id"].astype(str)), band)
        grids, code_notes = self.with_codes(grids)
        report = check_proposal(self.context(), grids, band=band)
        report["notes"] = notes + code_notes + report["codes"]["notes"] + problem_notes(report)
        return report

    def propose(self, community: str, *, band: tuple[int, int] | None = None,
                keep_current: bool = False) -> tuple[gpd.GeoDataFrame, dict, list[str]]:
        """Propose balanced grids for one community from whole buildings and estates, and check them.

        Parameters
        ----------
        community
            The community's id.
        band
            Households per grid, (floor, ceiling); default from the workload rule and the community's staffing
            (:meth:`band`).
        keep_current
            Change the current grids as little as the band permits.

        Returns
        -------
        tuple
            The grids (WGS-84, with ``households`` and ``persons``), their check and the notes: the band's
            source or warning, the proposer's notes, and why any proposed grid is over capacity.
        """
        ctx = self.context()
        band, band_notes = self.band({str(community)}, band)
        comm = ctx.community(community)
        hh = ctx.households_of({str(community)})
        x = hh.geometry.x.to_numpy() if len(hh) else []
        y = hh.geometry.y.to_numpy() if len(hh) else []
        frame = pd.DataFrame({"building_id": hh["building_id"].to_numpy(), "persons": hh["persons"].to_numpy(),
                              "x": x, "y": y})
        buildings = ctx.buildings_of({str(community)})
        if buildings is None or not len(buildings):
            raise InputError(f"community {community} has no buildings: grids are made of whole buildings",
                             field="community")
        result = propose_grids(comm, buildings, ctx.estates_of({str(community)}), frame, band=band,
                               current_grids=ctx.grids_of({str(community)}), keep_current=keep_current,
                               roads=ctx.roads, precision_m=ctx.settings.precision_m,
                               code_pattern=CodePattern.of(ctx.settings), taken_codes=self.taken_codes())
        grids = proposal_frame(result.grids.to_crs(4326), ctx, label="proposal")
        report = check_proposal(ctx, grids, band=band)
        grids, staff_notes = _allot_staff(grids, report, int(grid_workers(ctx.grids_of({str(community)})).sum()),
                                          ctx.settings)
        if staff_notes:
            report = check_proposal(ctx, grids, band=band)
        out = grids.copy()
        per = {r["id"]: r for r in report["grids"]}
        out["households"] = [per[i]["households"] for i in out["id"]]
        out["persons"] = [per[i]["persons"] for i in out["id"]]
        notes = band_notes + result.notes + staff_notes + _over_capacity_notes(
            report, result.units.oversized_buildings, ctx.settings.households_per_worker, short=bool(staff_notes)
            and "short)" in staff_notes[0]) + report["codes"]["notes"]
        report["notes"] = notes
        return out, report, notes

    # -------------------------------------------------------------- drafts
    def save_draft(self, grids: gpd.GeoDataFrame, check: dict, *, author: str, note: str = "") -> str:
        """Keep a proposal and its check as a draft in the workspace's proposal store; returns its id."""
        return self.store.proposals().save(grids, check, author=author, note=note)

    def drafts(self) -> list[dict]:
        """The saved proposals (drafts and applied), as the proposal store lists them."""
        return self.store.proposals().list()

    def draft(self, pid: str) -> dict:
        """One saved proposal: its grids (GeoJSON), its check and status (``WorkspaceError`` if there is none)."""
        return self.store.proposals().get(pid)

    def apply_draft(self, pid: str, *, author: str, reason: str,
                    expected_version: int | None = None) -> tuple[dict, dict]:
        """Apply a saved proposal as a new version and mark it applied.

        Parameters
        ----------
        pid
            The draft's id.
        author, reason
            Who makes the change and why (kept in history).
        expected_version
            The version the proposal was checked on (default: the one it was saved on).

        Returns
        -------
        tuple
            The new version (as a dict) and the check; ``ConflictError`` for a draft applied already.
        """
        store = self.store.proposals()
        p = store.get(pid)
        if p["status"] == "applied":
            raise ConflictError(f"proposal {pid} was applied already (version {p['applied_version']})")
        grids = proposal_from_geojson(p["grids"], self.context(), label=f"proposal {pid}")
        expected = expected_version if expected_version is not None else p["base_version"]
        version, report = self.apply(grids, author=author, reason=reason, expected_version=expected,
                                     band=tuple(p["check"]["band"]))
        store.mark_applied(pid, version["version"])
        return version, report

    # -------------------------------------------------------------- versions
    def apply(self, grids: gpd.GeoDataFrame, *, author: str, reason: str, expected_version: int | None = None,
              band: tuple[int, int] | None = None, kind: str = "apply",
              allow_invalid: bool = False) -> tuple[dict, dict]:
        """Check ``grids`` and, if valid, make them the new version of their communities atomically.

        Parameters
        ----------
        grids
            The proposed grids of some communities (metric).
        author, reason
            Who makes the change and why (kept in history).
        expected_version
            The version the proposal was checked on (default: the current one).
        band
            Households per grid, (floor, ceiling) (default from the workload rule, :meth:`band`).
        kind
            What history records the change as.
        allow_invalid
            Apply a proposal whose check finds problems.

        Returns
        -------
        tuple
            The new version (as a dict) and the check. ``InputError`` for an invalid proposal, ``ConflictError``
            when another change of the same communities came first (a change of other communities made meanwhile
            is kept: the new version is the current grids with only these communities replaced).
        """
        ctx = self.context()
        band, notes = self.band(set(grids["community_id"].astype(str)), band)
        grids, code_notes = self.with_codes(grids)
        report = check_proposal(ctx, grids, band=band)
        report["notes"] = notes + code_notes + report["codes"]["notes"] + problem_notes(report)
        if not report["valid"] and not allow_invalid:
            msg = ("the proposal is not valid and cannot be applied: it makes problems the current grids do not "
                   "have (save it as a draft): " + "; ".join(r["message"] for r in report["issues"]
                                                             if r["status"] == "new"))
            raise InputError(msg, field="proposal")
        version = self._commit(ctx, grids, sorted(set(grids["community_id"].astype(str))),
                               expected_version=(expected_version if expected_version is not None
                                                 else report["base_version"]),
                               author=author, reason=reason, kind=kind)
        return version, report

    def restore(self, version: int, *, author: str, reason: str) -> dict:
        """Make an earlier version's grids the current ones again, as a new version (history keeps all).

        Parameters
        ----------
        version
            The version to restore.
        author, reason
            Who restores and why (``restore version N`` when empty).

        Returns
        -------
        dict
            The new version. The communities restored are those a later version changed; one of them changed
            again while restoring is a ``ConflictError``, a change of another community made meanwhile is kept.
        """
        history = self.store.history()
        old = self.store.grids_at(version)
        changed = communities_changed_since(history, version)
        if not changed:
            raise InputError(f"the grids of version {version} are the current ones: nothing to restore",
                             field="version")
        ctx = self.context()
        old = old[old["community_id"].astype(str).isin(changed)].to_crs(ctx.metric_crs)
        return self._commit(ctx, old, changed, expected_version=history[-1].version, author=author,
                            reason=reason or f"restore version {version}", kind="restore")

    def compare(self, a: int, b: int, *, community: str | None = None) -> dict:
        """The diff between two versions of the grids (households assigned to both afresh).

        Parameters
        ----------
        a, b
            The versions, from and to.
        community
            Compare this community only.

        Returns
        -------
        dict
            Who changes grid, grids created, merged and removed (:func:`geo.redraw.compare_grids`), with
            ``from_version`` and ``to_version``.
        """
        ctx = self.context()
        before = self.store.grids_at(a).to_crs(ctx.metric_crs)
        after = self.store.grids_at(b).to_crs(ctx.metric_crs)
        if community is not None:
            ctx.community(community)
            before = before[before["community_id"].astype(str) == str(community)]
            after = after[after["community_id"].astype(str) == str(community)]
        out = compare_grids(ctx, before=before, after=after)
        out.update({"from_version": int(a), "to_version": int(b)})
        return out

    def history(self) -> dict:
        """Every version of the grids: ``{"current": N, "versions": [{version, created, author, reason, …}]}``."""
        return {"current": self.store.version, "versions": [v.as_dict() for v in self.store.history()]}

    def read_version(self, version: int) -> tuple[dict, gpd.GeoDataFrame]:
        """One version (as a dict) and its grids, WGS-84 (``WorkspaceError`` for a version that does not exist)."""
        v = self.store.grid_version(version)
        return v.as_dict(), self.store.grids_at(version)

    def read_as_of(self, when: date | datetime) -> tuple[dict, gpd.GeoDataFrame]:
        """The version in force on ``when`` (as a dict) and its grids, WGS-84."""
        v, grids = self.store.grids_as_of(when)
        return v.as_dict(), grids

    def _commit(self, ctx: RedrawContext, replace: gpd.GeoDataFrame, communities: list[str], *,
                expected_version: int | None, author: str, reason: str, kind: str) -> dict:
        """Make ``replace`` the grids of ``communities`` in a new version, keeping every other community's grids
        as they are when the change is written (not as they were when it was checked).

        The layers are recomputed on ``ctx`` beforehand; if another change came in between, the workspace's
        ``commit_grids`` finds a newer version under its lock and they are recomputed on that one (a change of
        the same communities is refused there with ``ConflictError``)."""
        store = self.store

        def assess(c: RedrawContext):
            whole = grids_after(c, replace, communities=communities)
            layers, summary = reassess(c, store.read("households"), whole, summary=store.summary())
            return whole, layers, summary

        prepared = assess(ctx)

        def build(current: int):
            return prepared if current == int(ctx.version) else assess(self.context())

        version = store.commit_grids(build, author=author, reason=reason, communities=communities, kind=kind,
                                     expected_version=expected_version)
        return version.as_dict()


def problem_notes(report: dict) -> list[str]:
    """Note lines on the problems a check leaves alone (the current grids have them already) and those it fixes."""
    code_kinds = ("code_malformed", "code_duplicate", "code_outside_community")  # the code notes say these already
    return ([f"remains, as in the current grids: {r['message']}" for r in report["issues"]
             if r["status"] == "remaining" and r["kind"] not in code_kinds]
            + [f"fixed: {r['message']}" for r in report["fixed"]])


def _allot_staff(grids: gpd.GeoDataFrame, report: dict, pool: int, settings) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The proposed grids with the community's full-time workers allotted by the workload rule
    (:func:`geo.workload.allot_workers`), and a note of what changed (none when nothing does)."""
    per = {r["id"]: r for r in report["grids"]}
    carried = grid_workers(grids)
    allotted = allot_workers([per[i]["workload"] or 0 for i in grids["id"]], carried, pool, settings=settings)
    if (allotted == carried).all():
        return grids, []
    grids = grids.copy()
    grids["full_time_workers"] = pd.array(allotted, dtype="Int64")
    changed = [f"{g} {a}→{b}" + ("" if str(w or "").strip() else " (to be named)")
               for g, a, b, w in zip(grids["id"], carried, allotted, grids["worker_name"]) if a != b]
    need = int(np.maximum(1, np.ceil(np.array([per[i]["workload"] or 0 for i in grids["id"]], dtype=float)
                                     / settings.households_per_worker)).sum())
    return grids, [f"full-time workers allotted by the workload rule: the proposal needs {need}, the community has "
                   f"{pool}{'' if need <= pool else f' ({need - pool} short)'}; changed: {', '.join(changed)}"]


def _over_capacity_notes(report: dict, oversized_buildings: list, standard: int, *, short: bool = False) -> list[str]:
    """Why each proposed grid over the workload rule is so: no worker yet (a new grid), a building alone above
    the ceiling, the community's workers falling short of the proposal's need, or fewer carried workers."""
    notes = []
    for row in report["grids"]:
        if not row["over_capacity"]:
            continue
        need = -(-int(round(row["workload"] or 0)) // standard)
        if row["workers"] == 0:
            why = f"has no full-time worker (a new grid, or one the workers do not reach): it needs {need}"
        elif oversized_buildings and row["households"] > report["band"][1]:
            why = (f"holds {row['households']} households with a building alone above the ceiling "
                   f"({', '.join(oversized_buildings[:3])}): it needs {need} full-time workers, it has {row['workers']}")
        elif short:
            why = (f"holds {row['households']} households (workload {row['workload']:g}) for {row['workers']} "
                   f"full-time worker(s): it needs {need}, and the community's workers are short (above)")
        else:
            why = (f"holds {row['households']} households (workload {row['workload']:g}) for the {row['workers']} "
                   f"full-time worker(s) it takes from the current grid: it needs {need}")
        notes.append(f"grid {row['id']} is over the workload rule ({standard} per worker): it {why}")
    return notes
