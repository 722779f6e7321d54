"""The store contract: what every workspace backend answers, with the shared types, errors and version logic.

A workspace (工作区) is what ``gridcover analyze`` wrote: its layers, a meta table (workspace id, version,
summary), the history of the grids (网格调整记录), the saved redraw proposals and the lookup blind-spot log.
The GeoPackage (:mod:`gridcover.store.gpkg`) and PostGIS (:mod:`gridcover.store.postgis`) backends implement
:class:`Workspace`, as pygeoapi's providers implement one base class; nothing above the store asks which one
it holds. The version logic (the version in force at a date, the conflict check, what a restore changes back)
is written once here, as functions over history records. This module imports neither backend.

Example
-------
>>> communities_changed_since([GridVersion(1, "", "", "", "analyze", ("C1", "C2"), None, 8),
...                            GridVersion(2, "", "", "", "apply", ("C2",), 1, 4)], 1)
['C2']
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.errors import GridcoverError
from geo.history import History
from gridcover.store.blindspot_log import BlindSpotLog


class WorkspaceError(GridcoverError):
    """A workspace that cannot be opened or read."""


class ConflictError(GridcoverError):
    """Someone else changed the same grids since the version a change was checked against."""


#: Fields of a grid kept in history (what a user draws; the rest is computed).
HISTORY_FIELDS = ("id", "name", "community_id", "worker_name", "worker_phone", "full_time_workers",
                  "info_officer_name", "info_officer_phone", "mediator_name", "mediator_phone", "part_time_workers",
                  "code")


@dataclass(frozen=True)
class GridVersion:
    """One version of the grids: who, when, why, and which communities it changed."""

    version: int
    created: str          # ISO 8601 UTC
    author: str
    reason: str
    kind: str             # analyze, apply or restore
    communities: tuple[str, ...]
    parent: int | None
    grids: int

    def as_dict(self) -> dict:
        out = asdict(self)
        out["communities"] = list(self.communities)
        return out


#: What :meth:`Workspace.commit_grids` writes, built on the current version: the whole new grids layer, the
#: output layers recomputed for it and the summary (``None``: unchanged).
Change = tuple[gpd.GeoDataFrame, dict[str, gpd.GeoDataFrame], dict | None]


# ------------------------------------------------------------------ version logic, over history records
def now() -> str:
    """The current time as history records it (ISO 8601 UTC, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def communities_changed_since(history: list[GridVersion], version: int) -> list[str]:
    """The communities whose grids a version after ``version`` changed (what restoring ``version`` changes back).

    >>> communities_changed_since([GridVersion(1, "", "", "", "analyze", ("C1", "C2"), None, 8),
    ...                            GridVersion(2, "", "", "", "apply", ("C2",), 1, 4)], 1)
    ['C2']
    """
    return sorted({str(c) for v in history if v.version > int(version) for c in v.communities})


def conflict_message(history: list[GridVersion], current: int, expected: int, communities) -> str | None:
    """Why a change of ``communities`` checked against version ``expected`` cannot be applied on ``current``
    (``None``: it can): a later version changed one of the same communities (changes to others are merged).

    Both backends call it (through :func:`check_conflict`) under their lock, on the history read there, before
    building the new version."""
    touched = set(map(str, communities))
    if expected > current:
        return f"conflict: version {expected} does not exist (the current one is {current})"
    later = [v for v in history if v.version > expected and set(v.communities) & touched]
    if not later:
        return None
    v = later[-1]
    return (f"conflict: version {v.version} by {v.author} at {v.created} ({v.reason}) changed "
            f"{', '.join(sorted(set(v.communities) & touched))} after version {expected} that this change was "
            f"checked against; check it again on version {current}")


def check_conflict(history: list[GridVersion], current: int, expected: int | None, communities) -> None:
    """Raise :class:`ConflictError` with :func:`conflict_message` when a change checked against ``expected``
    (``None``: not checked) cannot be applied on ``current``."""
    if expected is not None:
        msg = conflict_message(history, current, int(expected), communities)
        if msg:
            raise ConflictError(msg)


def version_as_of(history: list[GridVersion], when: date | datetime) -> GridVersion | None:
    """The version in force at the end of day ``when`` (UTC), or at the moment given; ``None`` before the
    first version.

    >>> h = [GridVersion(1, "2026-03-01T08:00:00+00:00", "", "", "analyze", (), None, 8),
    ...      GridVersion(2, "2026-03-05T09:30:00+00:00", "", "", "apply", ("C1",), 1, 8)]
    >>> version_as_of(h, date(2026, 3, 4)).version, version_as_of(h, date(2026, 3, 5)).version
    (1, 2)
    """
    if not isinstance(when, datetime):
        when = datetime.combine(when, time(23, 59, 59), tzinfo=timezone.utc)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    found = None
    for v in history:
        if datetime.fromisoformat(v.created) <= when:
            found = v
    return found


def new_version(current: int, *, author: str, reason: str, kind: str, communities, grids: gpd.GeoDataFrame
                ) -> GridVersion:
    """The history record of a change of ``communities`` made on version ``current``, created now."""
    return GridVersion(version=current + 1, created=now(), author=author, reason=reason, kind=kind,
                       communities=tuple(sorted(map(str, communities))), parent=current, grids=len(grids))


def grid_edits(workspace: Workspace) -> list[GridVersion]:
    """The grid changes made in a workspace after its analysis (``redraw apply`` / ``restore``), oldest first:
    what a new analysis into the same place would discard."""
    return [v for v in workspace.history() if v.kind != "analyze"]


# ------------------------------------------------------------------ rows and tiles answered in place
@dataclass(frozen=True)
class RowQuery:
    """Which rows of a layer :meth:`Workspace.select` gives: those meeting ``area`` (a WGS-84 geometry,
    ``intersects``), those whose ``equals`` columns hold the values given (compared as
    ``layers.features.PreparedLayer.query`` compares them: a boolean column as ``true``/``false``, a number as
    a number, text as text with a missing value as ``""``), the feature ids ``ids`` (in ``id_column``, or the
    row's place from 0 where the table has no such column), and the rows of the
    streets ``streets`` (``None``: any street; the street of a row is read as ``street_from`` says: ``id``,
    ``street_id``, or ``community_id`` through the ``communities`` layer; ``street_from=None`` with streets
    given: no row). Every :class:`Selection` carries each row's street (``street_from`` given) so that the
    caller can apply its own rules per row (k-suppression outside a caller's streets).

    >>> RowQuery(equals={"kind": "gap"}).streets is None
    True
    """

    area: object = None
    equals: dict[str, str] | None = None
    ids: tuple[str, ...] | None = None
    id_column: str = "id"
    streets: frozenset[str] | None = None
    street_from: str | None = None


@dataclass(frozen=True)
class TileSpec:
    """How :meth:`Workspace.tile_features` cuts a tile: the tile's ``extent`` (units per side), the ``buffer``
    of units around it that is drawn too, the ``tolerance`` of the simplification in Web Mercator metres
    (0: none; GEOS' topology-preserving simplification of each feature, as ``shapely.simplify(...,
    preserve_topology=True)``), the layer's ``kind`` (``point``, ``line``, ``polygon``) and the ``street_from``
    of :class:`RowQuery`. The values come from ``layers.tiles``; the store keeps none of its own."""

    extent: int
    buffer: int
    tolerance: float
    kind: str
    street_from: str | None = None


@dataclass(frozen=True)
class Selection:
    """What :meth:`Workspace.select` and :meth:`Workspace.tile_features` give: the rows (``frame``, with a
    ``fid`` column: the row's place in the order analyze wrote, from 1), each row's street (``None`` when the
    query named no ``street_from``) and how many rows match in all (``-1``: not counted)."""

    frame: gpd.GeoDataFrame
    street_of: np.ndarray | None
    matched: int


# ------------------------------------------------------------------ the contract
class ProposalStore(ABC):
    """Drafts and applied proposals of one workspace (:meth:`Workspace.proposals`): SQLite beside a GeoPackage
    (:mod:`gridcover.store.proposals`), a table in PostGIS (:class:`gridcover.store.postgis.PostGISProposals`)."""

    @abstractmethod
    def save(self, grids: gpd.GeoDataFrame, report: dict, *, author: str, note: str = "") -> str:
        """Keep ``grids`` and their check ``report`` as a draft; returns its id."""

    @abstractmethod
    def get(self, pid: str) -> dict:
        """A proposal with its grids (GeoJSON) and its check (``WorkspaceError`` for an unknown id)."""

    @abstractmethod
    def list(self) -> list[dict]:
        """Every proposal, newest first, without grids and check."""

    @abstractmethod
    def mark_applied(self, pid: str, version: int) -> None:
        """Record that proposal ``pid`` became grid version ``version``."""


class Workspace(ABC):
    """A workspace, read into memory per version (thread-safe): the operations the CLI, the API and the
    layers use, whichever backend holds it.

    A backend implements the abstract methods; the meta view (:attr:`tag`, :attr:`version`, :attr:`meta`,
    :meth:`summary`), :meth:`has`, the history lookups (:meth:`grid_version`, :meth:`grids_at`,
    :meth:`version_as_of`, :meth:`grids_as_of`), the checks of :meth:`commit_grids` and the blind-spot log
    are shared.
    """

    #: A local path naming the workspace: the GeoPackage file, or for PostGIS a name in a folder of its own
    #: under $GRIDCOVER_STATE_DIR. It keys caches of the workspace, and files kept beside it (the lookup
    #: blind-spot log; the GeoPackage's drafts) go into its folder.
    path: Path
    #: The meta table (workspace id, version, summary …) as last read; kept fresh by :meth:`_refresh`.
    _meta: dict[str, str]

    # -------------------------------------------------------------- what a backend implements
    @abstractmethod
    def _refresh(self) -> None:
        """Read the meta table again if the workspace changed since (drops the layers read of another version)."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the workspace is, for messages (the GeoPackage's path; the PostGIS database and schema)."""

    @property
    @abstractmethod
    def stamp(self) -> str:
        """A short text that changes with every edit of the stored layers in place (QGIS, SQL), even one that
        leaves :attr:`version` as it is: with :attr:`tag`, what caches and ETags are keyed by."""

    @abstractmethod
    def layer_names(self) -> list[str]:
        """The layers the workspace holds, in the order analyze wrote them."""

    @abstractmethod
    def read(self, name: str) -> gpd.GeoDataFrame:
        """A layer in WGS-84, read once per version (callers must not modify it; ``WorkspaceError`` for a
        layer the workspace does not hold)."""

    @abstractmethod
    def history(self) -> list[GridVersion]:
        """Every version of the grids, oldest first (the analysed grids are the first)."""

    @abstractmethod
    def _stored_grids(self, version: GridVersion) -> gpd.GeoDataFrame:
        """The grids history keeps for ``version`` (not the current one), WGS-84."""

    @abstractmethod
    def _commit_grids(self, build: Callable[[int], Change], *, author: str, reason: str, communities: list[str],
                      kind: str, expected_version: int | None, fail_after: str | None) -> GridVersion:
        """:meth:`commit_grids` once its arguments are checked: under the backend's lock, read the current
        version and history, :func:`check_conflict`, ``build``, write the layers, the history record
        (:func:`new_version`) and the meta table, all or nothing."""

    @abstractmethod
    def proposals(self) -> ProposalStore:
        """The saved redraw proposals of this workspace."""

    @abstractmethod
    def cases(self) -> CaseStore:
        """The cases (事件) stored in this workspace through the case API (:class:`CaseStore`)."""

    @abstractmethod
    def close(self) -> None:
        """Release what the workspace holds open (it may still answer afterwards)."""

    @abstractmethod
    def scorecard_history(self) -> History:
        """Every snapshot of the scorecard the workspace keeps (docs/history.md): the rows of
        ``scorecard_history`` and the members of ``scorecard_history_ids`` (ids: never hand them to the public)."""

    # -------------------------------------------------------------- meta view
    @property
    def tag(self) -> str:
        """Identity and version of the current content: changes with every change of the workspace."""
        self._refresh()
        return f"{self._meta.get('workspace_id', 'x')[:12]}-{self._meta.get('version', '0')}"

    @property
    def version(self) -> int:
        self._refresh()
        return int(self._meta.get("version", "0"))

    @property
    def meta(self) -> dict[str, str]:
        self._refresh()
        return dict(self._meta)

    def summary(self) -> dict:
        return json.loads(self.meta.get("summary", "{}"))

    def has(self, name: str) -> bool:
        return name in self.layer_names()

    def read_columns(self, name: str, columns: list[str]) -> pd.DataFrame:
        """Some attribute columns of a layer, without its geometry (those of ``columns`` it has); a backend may
        read only them (the lookup's address index needs two columns of the households, not all of them)."""
        frame = self.read(name)
        return pd.DataFrame(frame[[c for c in columns if c in frame.columns]])

    # -------------------------------------------------------------- grid history
    def _current_grids(self) -> gpd.GeoDataFrame:
        """The grids as the user drew them (``input_grids`` where analyze kept them apart), WGS-84, with the
        standard codes analyze made for grids without one (``grids.code``): from then on they are the grids'
        codes, kept in history like a given one."""
        if not self.has("input_grids"):
            return self.read("grids")
        drawn = self.read("input_grids")
        out = self.read("grids")
        if "code" not in out.columns:
            return drawn
        made = pd.Series(out["code"].to_numpy(), index=out["id"].astype(str).to_numpy())
        made = made[~made.index.duplicated()].reindex(drawn["id"].astype(str).to_numpy()).to_numpy()
        given = drawn["code"].to_numpy(dtype=object) if "code" in drawn.columns else np.full(len(drawn), None, object)
        drawn = drawn.copy()
        drawn["code"] = np.where(pd.isna(given), made, given)
        return drawn

    def grid_version(self, version: int) -> GridVersion:
        history = self.history()
        for v in history:
            if v.version == int(version):
                return v
        known = ", ".join(str(v.version) for v in history)
        raise WorkspaceError(f"no grid version {version} (known: {known})")

    def grids_at(self, version: int) -> gpd.GeoDataFrame:
        """The grids (the fields a user draws, WGS-84) of any version."""
        v = self.grid_version(version)
        if v.version == self.version:
            grids = self._current_grids()
            return grids[[c for c in HISTORY_FIELDS if c in grids.columns] + [grids.geometry.name]]
        return self._stored_grids(v)

    def version_as_of(self, when: date | datetime) -> GridVersion | None:
        """The version in force at the end of day ``when`` (UTC), or at the moment given; ``None`` before the
        first version (:func:`version_as_of` over :meth:`history`)."""
        return version_as_of(self.history(), when)

    def grids_as_of(self, when: date | datetime) -> tuple[GridVersion, gpd.GeoDataFrame]:
        """The version in force on ``when`` and its grids (``WorkspaceError`` before the first version)."""
        v = self.version_as_of(when)
        if v is None:
            first = self.history()[0]
            msg = f"no grids were recorded on {when}: the first version ({first.version}) dates from {first.created}"
            raise WorkspaceError(msg)
        return v, self.grids_at(v.version)

    def commit_grids(self, build: Callable[[int], Change], *, author: str, reason: str, communities: list[str],
                     kind: str = "apply", expected_version: int | None = None,
                     fail_after: str | None = None) -> GridVersion:
        """Make the grids ``build`` returns the new version, with their recomputed layers, atomically.

        Parameters
        ----------
        build
            Called once under the backend's lock, after the conflict check, with the current version (``read``
            answers with it meanwhile); returns ``(grids, layers, summary)`` built on that version: the whole
            new grids layer (any CRS; the fields of :data:`HISTORY_FIELDS` are kept in history) — the current
            grids with only ``communities`` replaced —, the output layers to replace (``grids``,
            ``households``, ``coverage_issues`` …, WGS-84) and the summary (``None``: unchanged). A change
            prepared on an older version is built again on the current one, so nobody's change is lost.
        communities
            The communities the change touches.
        expected_version
            The version the change was checked against: if a later version touched one of ``communities``
            the change is refused with :class:`ConflictError` (a change to other communities is merged).
        fail_after
            For tests only: raise after this step (``copy``, ``layers``, ``history``) to simulate a crash;
            the previous version stays intact.
        """
        author = (author or "").strip()
        reason = (reason or "").strip()
        if not author or not reason:
            raise WorkspaceError("a change of the grids needs an author and a reason")
        return self._commit_grids(build, author=author, reason=reason, communities=communities, kind=kind,
                                  expected_version=expected_version, fail_after=fail_after)

    # -------------------------------------------------------------- layers answered in place (issue 16)
    #: Whether the backend answers pages, single features and vector tiles of its layers in its database
    #: (:meth:`select`, :meth:`tile_features`, :meth:`layer_schema`, :meth:`layer_extent`) instead of being read
    #: whole into memory. The GeoPackage is read whole once per version and answered by ``layers``' prepared
    #: layers (``False``, and these four methods raise ``NotImplementedError``); PostGIS answers in SQL on its
    #: GiST indexes, so a server's memory does not grow with the tables (docs/postgis.md, "Serving from PostGIS").
    in_place: bool = False

    def select(self, name: str, *, query: RowQuery | None = None, limit: int | None = None, offset: int = 0,
               count: bool = True) -> Selection:
        """The rows of layer ``name`` matching ``query`` (every column, WGS-84), in the order analyze wrote
        them (``fid``), ``offset`` rows skipped and at most ``limit`` given, with how many match in all
        (``count=False``: ``-1``, not counted)."""
        raise NotImplementedError(f"{type(self).__name__} is read whole (in_place is False)")

    def tile_features(self, name: str, z: int, x: int, y: int, *, tile: TileSpec) -> Selection:
        """The features of layer ``name`` meeting the XYZ tile ``z/x/y`` (its ``tile.buffer`` included), in
        ``fid`` order, every column, the geometry simplified, clipped and quantised in tile units (y down) as
        ``tile`` says (``ST_AsMVTGeom``); features left with no geometry are dropped. ``matched`` is their count."""
        raise NotImplementedError(f"{type(self).__name__} is read whole (in_place is False)")

    def layer_schema(self, name: str) -> gpd.GeoDataFrame:
        """Layer ``name`` with no rows: its columns and their dtypes as :meth:`read` gives them."""
        raise NotImplementedError(f"{type(self).__name__} is read whole (in_place is False)")

    def layer_extent(self, name: str) -> tuple[float, float, float, float]:
        """The WGS-84 extent (x0, y0, x1, y1) of layer ``name`` (zeros for an empty layer)."""
        raise NotImplementedError(f"{type(self).__name__} is read whole (in_place is False)")

    # -------------------------------------------------------------- side files
    def blind_spots(self) -> BlindSpotLog | None:
        """The lookup blind-spot log kept beside the workspace, opened once (``None`` where that folder is not
        writable: a read-only workspace still answers lookups)."""
        if "_blind_spot_log" not in self.__dict__:
            try:
                self._blind_spot_log = BlindSpotLog(self.path.resolve().parent / BlindSpotLog.FILE)
            except Exception:  # noqa: BLE001 - a read-only workspace still answers lookups
                self._blind_spot_log = None
        return self._blind_spot_log


# ------------------------------------------------------------------ cases (事件): the store's part
#: The columns of a stored case, in order (what :meth:`CaseStore.add` takes and :meth:`CaseStore.list` gives).
#: Times are tz-aware UTC timestamps, kept to the second.
CASE_COLUMNS = ("id", "reported_at", "urgency", "category", "source", "household_id", "address", "location",
                "input_crs", "lon", "lat", "grid_id", "grid_name", "community_id", "street_id", "worker_name",
                "worker_phone", "covered", "nearest_grid_id", "distance_m", "method", "grid_version",
                "response_due", "closure_due", "accepted_at", "accepted_by", "closed_at", "closed_by",
                "received_at", "received_by", "fingerprint")
#: The time columns of a case.
CASE_TIMES = ("reported_at", "response_due", "closure_due", "accepted_at", "closed_at", "received_at")
#: The columns a resent case must repeat for it to be the same case (an idempotent resend).
CASE_IDENTITY = ("id", "reported_at", "urgency", "category", "source", "household_id", "address", "input_crs",
                 "lon", "lat")
#: Case ids named in a refusal at most.
MAX_CASES_NAMED = 20


class CaseError(GridcoverError):
    """A case operation refused: an English ``problem`` code, the English text and a Chinese ``message``.

    The HTTP answer carries ``problem`` and ``message`` (:meth:`as_json`, through ``api/app.py:ERROR_DETAILS``);
    the subclasses say the status (not found, conflict, forbidden); the base is a bad request. The body has the
    shape of :class:`geo.problems.ProblemError`'s (``problem``, ``message``, ``message_en``), plus a refused
    batch's ``errors``.

    >>> CaseError("urgency_unknown", "urgency 'x' is not one of general, urgent", "紧急程度无效").as_json()["message"]
    '紧急程度无效'
    """

    def __init__(self, problem: str, text: str, message: str, *, rows: list[dict] | None = None,
                 error_count: int | None = None) -> None:
        self.problem, self.message, self.rows = problem, message, rows
        self.error_count = error_count
        super().__init__(text)

    def as_json(self) -> dict:
        out = {"problem": self.problem, "message": self.message, "message_en": str(self)}  # as geo.problems gives
        if self.rows is not None:
            out["errors"] = self.rows
            out["error_count"] = len(self.rows) if self.error_count is None else self.error_count
        return out


class CaseNotFoundError(CaseError, WorkspaceError):
    """No such case (or none the caller may see)."""


class CaseConflictError(CaseError, ConflictError):
    """A case id already stored with other content, or a case already accepted or closed."""


def case_not_found(case_id: str) -> CaseNotFoundError:
    return CaseNotFoundError("case_not_found", f"no case {str(case_id)[:100]!r}", f"没有编号为 {str(case_id)[:100]} 的事件")


def case_fingerprints(cases: pd.DataFrame) -> np.ndarray:
    """A hash of what a case's sender gave (:data:`CASE_IDENTITY`), one per row, vectorised: a resent case with
    the same fingerprint is the same case.

    >>> f = pd.DataFrame({"id": ["A", "A"], "reported_at": pd.to_datetime(["2026-03-02T08:00Z"] * 2),
    ...                   "urgency": ["general", "urgent"]})
    >>> a, b = case_fingerprints(f)
    >>> a == b
    False
    """
    present = [c for c in CASE_IDENTITY if c in cases.columns]
    text = pd.DataFrame({c: cases[c].astype("string").fillna("") for c in present})
    for c in ("lon", "lat"):
        if c in cases.columns:
            text[c] = pd.to_numeric(cases[c], errors="coerce").round(7).astype("string").fillna("")
    for c in CASE_TIMES:
        if c in text.columns:
            text[c] = pd.Series(iso_utc(cases[c]), index=cases.index, dtype="string").fillna("")
    hashed = pd.util.hash_pandas_object(text, index=False).to_numpy()
    return np.char.mod("%016x", hashed).astype(object)


_U64 = (1 << 64) - 1


def case_fingerprint(case: dict) -> str:
    """:func:`case_fingerprints` of one case given as a record (times as aware ``datetime`` or ``Timestamp``),
    without a frame: the same text of each field of :data:`CASE_IDENTITY` the record holds, hashed by pandas'
    own element hash (``pd.util.hash_array``) and combined as ``hash_pandas_object`` combines a row's columns.

    >>> case = {"id": "A", "reported_at": pd.Timestamp("2026-03-02T08:00Z"), "urgency": "urgent", "lon": 104.06}
    >>> case_fingerprint(case) == case_fingerprints(pd.DataFrame([case]))[0]
    True
    """
    present = [c for c in CASE_IDENTITY if c in case]
    texts = np.empty(len(present), dtype=object)
    for i, c in enumerate(present):
        value = case[c]
        if value is None or value is pd.NA or (isinstance(value, float) and value != value) or value is pd.NaT:
            texts[i] = ""
        elif c in ("lon", "lat"):
            texts[i] = str(float(np.round(np.float64(value), 7)))
        elif c in CASE_TIMES:
            texts[i] = pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            texts[i] = str(value)
    hashed = pd.util.hash_array(texts, categorize=False) if len(present) else np.zeros(0, dtype=np.uint64)
    out, mult, n = 0x345678, 1000003, len(present)  # pandas' combine_hash_arrays (CPython's tuple hash)
    for i, h in enumerate(hashed.tolist()):
        out = ((out ^ h) * mult) & _U64
        mult = (mult + 82520 + 2 * (n - i)) & _U64
    return f"{(out + 97531) & _U64:016x}"


def _stamp(value) -> pd.Timestamp | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    out = pd.Timestamp(value)
    return out.tz_localize("UTC") if out.tzinfo is None else out.tz_convert("UTC")


def case_update(case: dict, action: str, *, at, author: str) -> dict:
    """The fields an ``accept`` or ``close`` of ``case`` (a stored record) sets, or the refusal.

    The rules both backends apply under their lock: a time is never before the case was reported, a close
    never before its acceptance; a case is accepted once and closed once (a second time is a
    :class:`CaseConflictError` naming who did it and when); closing a case nobody accepted records the close
    as its acceptance too (the first action on a case is its response, 首接负责).

    >>> case = {"id": "C1", "reported_at": "2026-03-02T08:00:00Z", "accepted_at": None, "closed_at": None}
    >>> sorted(case_update(case, "close", at="2026-03-02T09:00:00Z", author="王芳"))
    ['accepted_at', 'accepted_by', 'closed_at', 'closed_by']
    """
    at = _stamp(at).floor("s")
    reported = _stamp(case["reported_at"])
    cid = case["id"]
    accepted, closed = _stamp(case.get("accepted_at")), _stamp(case.get("closed_at"))
    if closed is not None:
        raise CaseConflictError("case_closed", f"case {cid} was closed at {closed.isoformat()} by "
                                f"{case.get('closed_by')}", f"事件 {cid} 已于 {closed.isoformat()} 由 "
                                f"{case.get('closed_by')} 办结")
    if at < reported:
        raise CaseError("time_before_reported", f"case {cid}: {action} at {at.isoformat()} is before it was reported "
                        f"({reported.isoformat()})", f"事件 {cid}：{'受理' if action == 'accept' else '办结'}时间早于上报时间")
    if action == "accept":
        if accepted is not None:
            raise CaseConflictError("case_accepted", f"case {cid} was accepted at {accepted.isoformat()} by "
                                    f"{case.get('accepted_by')}", f"事件 {cid} 已于 {accepted.isoformat()} 由 "
                                    f"{case.get('accepted_by')} 受理")
        return {"accepted_at": at, "accepted_by": author}
    if action != "close":
        raise ValueError(f"unknown case action {action!r}")
    if accepted is not None and at < accepted:
        raise CaseError("time_before_accepted", f"case {cid}: close at {at.isoformat()} is before its acceptance "
                        f"({accepted.isoformat()})", f"事件 {cid}：办结时间早于受理时间")
    out = {"closed_at": at, "closed_by": author}
    if accepted is None:
        out.update(accepted_at=at, accepted_by=author)
    return out


@dataclass(frozen=True)
class CaseFilter:
    """Which stored cases :meth:`CaseStore.list` and :meth:`CaseStore.count` give.

    ``status``: of ``open`` (neither accepted nor closed), ``accepted`` (accepted, not closed), ``closed``;
    ``overdue_at``: only cases open past a deadline at that moment (not accepted past ``response_due``, or not
    closed past ``closure_due``); ``grids``/``communities``/``streets``: only cases there (each ``None``: any);
    ``scope``: what the caller may see — cases in ``scope_streets`` or ``scope_grids`` or received by
    ``scope_received_by`` (``scope=False``: every case).
    """

    status: frozenset[str] | None = None
    overdue_at: datetime | None = None
    grids: frozenset[str] | None = None
    communities: frozenset[str] | None = None
    streets: frozenset[str] | None = None
    scope: bool = False
    scope_streets: frozenset[str] = frozenset()
    scope_grids: frozenset[str] = frozenset()
    scope_received_by: str | None = None
    ids: frozenset[str] | None = None


@dataclass(frozen=True)
class CaseIntake:
    """What :meth:`CaseStore.add` did: the ids stored now and those already stored as the same case."""

    stored: tuple[str, ...]
    duplicates: tuple[str, ...]


def check_intake(batch: pd.DataFrame, existing: pd.DataFrame) -> tuple[str, ...]:
    """The ids of ``batch`` already stored as the same case (same fingerprint); a
    :class:`CaseConflictError` naming the ids stored with other content. Both backends call it under their
    lock on the rows of the batch's ids they hold (``id``, ``fingerprint``)."""
    if not len(existing):
        return ()
    known = pd.Series(existing["fingerprint"].to_numpy(), index=existing["id"].astype(str).to_numpy())
    sent = pd.Series(batch["fingerprint"].to_numpy(), index=batch["id"].astype(str).to_numpy())
    sent = sent[sent.index.isin(known.index)]
    clash = sent.index[sent.to_numpy() != known.reindex(sent.index).to_numpy()]
    if len(clash):
        named = ", ".join(clash[:MAX_CASES_NAMED])
        more = f" and {len(clash) - MAX_CASES_NAMED} more" if len(clash) > MAX_CASES_NAMED else ""
        raise CaseConflictError("case_id_conflict", f"{len(clash)} case id(s) already stored with other content: "
                                f"{named}{more} (nothing of this batch was stored)",
                                f"{len(clash)} 个事件编号已存在且内容不同：{named}{more}（本批未保存任何事件）")
    return tuple(sent.index)


class CaseStore(ABC):
    """The cases (事件) of one workspace (:meth:`Workspace.cases`): SQLite beside a GeoPackage
    (:class:`gridcover.store.cases.SQLiteCaseStore`, carried into every new analysis of the folder), a table
    in PostGIS (:class:`gridcover.store.postgis.PostGISCases`, kept by ``analyze --db``). Both answer alike.

    A batch is stored all or nothing; an id already stored is the same case resent (nothing changes, it is
    named in :attr:`CaseIntake.duplicates`) when its :func:`case_fingerprints` match, else a
    :class:`CaseConflictError` and nothing of the batch is stored.
    """

    @abstractmethod
    def add(self, cases: pd.DataFrame) -> CaseIntake:
        """Store a batch of resolved cases (:data:`CASE_COLUMNS`) in one transaction."""

    def add_one(self, case: dict) -> CaseIntake:
        """Store one resolved case given as a record of :data:`CASE_COLUMNS` (times as aware ``datetime``, the
        ``fingerprint`` made by :func:`case_fingerprint`): what :meth:`add` does with a batch of that one case.
        A backend may store it without the frame (the single intake's path)."""
        return self.add(pd.DataFrame([{c: case.get(c) for c in CASE_COLUMNS}]))

    @abstractmethod
    def _update(self, case_id: str, action: str, *, at, author: str) -> dict:
        """Under the backend's lock: read the case (:func:`case_not_found`), apply :func:`case_update`, write it."""

    @abstractmethod
    def list(self, filters: CaseFilter = CaseFilter(), *, limit: int | None = None, offset: int = 0) -> pd.DataFrame:
        """The cases matching ``filters``, oldest report first (then id), as :data:`CASE_COLUMNS`."""

    @abstractmethod
    def count(self, filters: CaseFilter = CaseFilter()) -> int:
        """How many cases match ``filters``."""

    @property
    @abstractmethod
    def stamp(self) -> str:
        """A short text that changes with every write of the cases (what caches of them are keyed by)."""

    def accept(self, case_id: str, *, at, author: str) -> dict:
        """Record that ``author`` accepted (受理) the case at ``at``; returns the stored case."""
        self._update(case_id, "accept", at=at, author=author)
        return self.get(case_id)

    def close(self, case_id: str, *, at, author: str) -> dict:
        """Record that ``author`` closed (办结) the case at ``at`` (and accepted it, if nobody had)."""
        self._update(case_id, "close", at=at, author=author)
        return self.get(case_id)

    def input_layer(self) -> pd.DataFrame:
        """The stored cases as rows of the ``cases`` input layer (geo/schema.py), for the next analysis: the
        fields a sender gave (times as ISO 8601 UTC text, the recorded acceptance and closure included) and the
        resolved WGS-84 ``lon``/``lat``."""
        stored = self.list()
        out = pd.DataFrame({c: stored[c] for c in ("id", "urgency", "category", "household_id", "source", "address")})
        for c in ("reported_at", "accepted_at", "closed_at"):
            text = stored[c].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            out[c] = text.astype(object).where(text.notna(), None)
        out["lon"], out["lat"] = stored["lon"], stored["lat"]
        return out

    def get(self, case_id: str) -> dict:
        """One stored case as a record (``CaseNotFoundError`` for an unknown id)."""
        found = self.list(CaseFilter(ids=frozenset([str(case_id)])), limit=1)
        if not len(found):
            raise case_not_found(case_id)
        return case_records(found)[0]


def iso_utc(times: pd.Series) -> np.ndarray:
    """Instants as ISO 8601 UTC text to the second (``2026-11-30T01:00:00Z``), ``None`` where missing; in numpy's
    C formatter (pandas' ``strftime`` is ten times slower).

    >>> iso_utc(pd.Series(pd.to_datetime(["2026-11-30T09:00:00+08:00", None], utc=True))).tolist()
    ['2026-11-30T01:00:00Z', None]
    """
    values = pd.to_datetime(times, utc=True).dt.tz_localize(None).to_numpy("datetime64[s]")
    out = np.char.add(np.datetime_as_string(values, unit="s"), "Z").astype(object)
    out[np.isnat(values)] = None
    return out


def case_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each column of a frame of cases as an object array of plain Python values, vectorised: times as ISO 8601
    UTC text (:func:`iso_utc`), missing values as ``None`` (what JSON answers and SQL parameters take)."""
    out = {}
    for c in frame.columns:
        col = frame[c]
        if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(col.dtype):
            values = iso_utc(col)
        elif isinstance(col.dtype, pd.api.extensions.ExtensionDtype):
            values = col.to_numpy(dtype=object, na_value=None)
        else:
            values = col.to_numpy().astype(object)
        values[pd.isna(values)] = None
        out[str(c)] = values
    return out


def case_records(frame: pd.DataFrame) -> list[dict]:
    """Stored cases as JSON-ready records: times as ISO 8601 UTC text, missing values as ``None``."""
    columns = case_columns(frame)
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


def empty_cases() -> pd.DataFrame:
    """A frame of no cases with the columns and dtypes :meth:`CaseStore.list` gives."""
    return normalise_cases(pd.DataFrame({c: pd.Series([], dtype=object) for c in CASE_COLUMNS}))


def normalise_cases(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored cases as one set of dtypes whatever the backend read: times UTC, numbers float, flags bool,
    the rest text (``None`` where missing)."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for c in CASE_COLUMNS:
        values = frame[c].reset_index(drop=True) if c in frame.columns else pd.Series([None] * len(frame), dtype=object)
        if c in CASE_TIMES:
            out[c] = pd.to_datetime(values, utc=True, format="ISO8601")
        elif c in ("lon", "lat", "distance_m"):
            out[c] = pd.to_numeric(values, errors="coerce").astype(float)
        elif c == "covered":
            if values.dtype == object:
                values = values.replace({"t": True, "f": False, "1": True, "0": False, 1: True, 0: False})
            out[c] = values.astype("boolean")
        else:
            text = values.astype("string")
            out[c] = text.astype(object).where(text.notna(), None)
    return out
