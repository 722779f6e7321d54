"""Who is responsible for this place, for a store: the lookup index of each grid version, kept and rebuilt.

A :class:`LookupService` is made once per store (the HTTP app keeps one on ``app.state.lookup``, a command
makes its own). It builds the :class:`geo.lookup.LookupIndex` of the store's current version on first use and
again after a new version (a new analysis or a redraw changes the store's tag), and that of the version in
force on a date for ``as_of``. Points that no grid covers are counted in the store's blind-spot log.

Given a prepared index (``prepared``: :class:`gridcover.io.lookup_index.PreparedIndex`, which the command line
hands in), the current version's index is loaded from the file beside the workspace when it was built from the
workspace as it is, else built and saved there; and given the store as a function that opens it, a lookup
answered from the prepared index opens no store at all (nor loads pandas): the store is opened for a build, a
date, a batch's blind spots or a point in no grid.

Example
-------
>>> service = LookupService(open_workspace("out/sample"))  # doctest: +SKIP
>>> service.lookup(lon=[104.0657], lat=[30.6595], crs="gcj02")["grid_id"]  # doctest: +SKIP
'G01-02'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import TYPE_CHECKING, BinaryIO, Protocol

import numpy as np

from geo.errors import InputError
from geo.lookup import (LookupIndex, build_index, columns_to_records, lookup_addresses, lookup_point, lookup_points,
                        to_wgs84)

if TYPE_CHECKING:  # a lookup answered from a prepared index imports neither the store nor the batch reader
    from gridcover.lookup_batch import BatchPlan
    from gridcover.store import Workspace

AS_OF_NOTE = "answered with the grids in force on {date}: version {version} of {created}"
AS_OF_BEFORE_NOTE = ("no grid version is recorded on or before {date}: answered with the first recorded, "
                     "version {version} of {created}")


def parse_as_of(value: str | None) -> date | None:
    """``as_of`` as a date.

    Parameters
    ----------
    value
        ``YYYY-MM-DD``, or ``None``/empty for none.

    Returns
    -------
    date or None

    Raises
    ------
    InputError
        Naming the parameter ``as_of`` for anything but ``YYYY-MM-DD``.

    Examples
    --------
    >>> parse_as_of("2025-01-01")
    datetime.date(2025, 1, 1)
    >>> parse_as_of("") is None
    True
    """
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"as_of must be a date YYYY-MM-DD, not {value!r}", field="as_of") from None


def build_store_index(workspace: Workspace, *, city: str | None = None, version: int | None = None) -> LookupIndex:
    """Build the lookup index of a store's layers.

    Parameters
    ----------
    workspace
        The store.
    city
        The city addresses are read in (inferred from the data if ``None``).
    version
        A grid version from the store's history; ``None`` for the current grids.

    Returns
    -------
    LookupIndex
    """
    def optional(name: str):
        return workspace.read(name) if workspace.has(name) else None

    def households():  # read on the first address lookup only: a point lookup never reads the households
        if not workspace.has("households"):
            return None
        frame = workspace.read_columns("households", ["address", "building_id"])
        return frame if {"address", "building_id"} <= set(frame.columns) else None

    grids = workspace.read("grids") if version is None else workspace.grids_at(version)
    return build_index(grids, buildings=optional("buildings"), estates=optional("estates"),
                       communities=optional("communities"), streets=optional("streets"), households=households,
                       version=workspace.version if version is None else version, city=city)


class Prepared(Protocol):
    """A saved index of the store's current version (:class:`gridcover.io.lookup_index.PreparedIndex`)."""

    def identity(self) -> str | None: ...

    def load(self, *, city: str | None) -> LookupIndex | None: ...

    def save(self, index: LookupIndex, *, city: str | None, identity: str | None) -> bool: ...


class LookupService:
    """Lookups of one store, with the index of each grid version it has built (thread-safe).

    Parameters
    ----------
    workspace
        The store whose grids answer, or a function of no arguments opening it (called on first need).
    city
        The city addresses are read in when a lookup names none (the doors pass ``GRIDCOVER_CITY``,
        :class:`gridcover.environment.Environment`); else inferred from the data.
    prepared
        The store's prepared index (see the module docstring), or ``None`` to build the index in memory.
    """

    def __init__(self, workspace: "Workspace | Callable[[], Workspace]", *, city: str | None = None,
                 prepared: Prepared | None = None) -> None:
        self._workspace = workspace
        self.prepared = prepared
        self.city = city or None
        # version (None: the current one) -> (store tag, city, index)
        self._indexes: dict[int | None, tuple[str, str | None, LookupIndex]] = {}
        self._lock = threading.Lock()
        self._build_locks: dict[int | None, threading.Lock] = {}

    @property
    def workspace(self) -> "Workspace":
        """The store (opened now if it was given as a function)."""
        if callable(self._workspace):
            with self._lock:
                if callable(self._workspace):
                    self._workspace = self._workspace()
        return self._workspace

    def _prepared_index(self, city: str | None) -> LookupIndex:
        """The current version's index from the prepared file, built and saved first when it is stale."""
        index = self.prepared.load(city=city)
        if index is None:
            identity = self.prepared.identity()
            index = build_store_index(self.workspace, city=city)
            self.prepared.save(index, city=city, identity=identity)
        return index

    def get_index(self, *, city: str | None = None, as_of: date | None = None) -> LookupIndex:
        """The lookup index of the store's current version, or of the version in force on ``as_of``.

        Built on first use and again once the store's tag or the city changes; for a date before every
        recorded version, the first version's. With a prepared index, the current version's comes from it.

        Parameters
        ----------
        city
            The city addresses are read in (default the service's ``city``, else inferred from the data).
        as_of
            A date: the grids in force on it.

        Returns
        -------
        LookupIndex
        """
        city = city or self.city
        if as_of is None and self.prepared is not None:
            return self._prepared_index(city)
        workspace = self.workspace
        key: int | None = None
        tag = workspace.tag
        if as_of is not None:
            v = workspace.version_as_of(as_of) or workspace.history()[0]
            if v.version != workspace.version:
                key = v.version
                tag = f"{tag}@{v.version}"
        hit = self._indexes.get(key)
        if hit and hit[0] == tag and hit[1] == city:
            return hit[2]
        with self._lock:
            lock = self._build_locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._indexes.get(key)
            if hit and hit[0] == tag and hit[1] == city:
                return hit[2]
            index = build_store_index(workspace, city=city, version=key)
            self._indexes[key] = (tag, city, index)
            return index

    def has_index(self, *, city: str | None = None) -> bool:
        """Is the index of the store's current version built already (a lookup then takes no build)?"""
        city = city or self.city
        hit = self._indexes.get(None)
        return bool(hit and hit[0] == self.workspace.tag and hit[1] == city)

    def lookup_many(self, *, lon: Sequence[float] | None = None, lat: Sequence[float] | None = None,
               addresses: Sequence[str] | None = None, crs: str = "wgs84", city: str | None = None,
               as_of: date | None = None) -> dict[str, np.ndarray]:
        """Answers for points or addresses, as columns (:func:`geo.lookup.lookup_points`,
        :func:`geo.lookup.lookup_addresses`); points no grid covers are counted as blind spots.

        Parameters
        ----------
        lon, lat
            Coordinates in ``crs`` (one of :data:`geo.lookup.LOOKUP_CRS`).
        addresses
            Addresses instead of coordinates.
        crs
            Of ``lon``/``lat``.
        city
            See :meth:`get_index`.
        as_of
            A date: answered with the grids in force on it.

        Returns
        -------
        dict of str to numpy.ndarray
            One array per answer field, aligned with the input.
        """
        index = self.get_index(city=city, as_of=as_of)
        if addresses is not None:
            return lookup_addresses(index, addresses)
        columns = lookup_points(index, lon, lat, crs=crs)
        if not columns["covered"].all():  # the log (and the store) is opened for a point in no grid only
            log = self.workspace.blind_spots()
            if log is not None:
                log.record(columns)
        return columns

    def _count_blind_spot(self, record: dict) -> None:
        """Count a single point answer in no grid in the store's blind-spot log."""
        log = self.workspace.blind_spots()
        if log is not None:
            log.record({"covered": np.zeros(1, dtype=bool), **{k: np.array([record[k]], dtype=object) for k in (
                "lon_wgs84", "lat_wgs84", "version", "nearest_grid_id")}})

    def lookup(self, *, lon: Sequence[float] | None = None, lat: Sequence[float] | None = None,
               address: str | None = None, crs: str = "wgs84", city: str | None = None,
               as_of: date | None = None) -> dict:
        """The answer for one point or one address, as a record, with ``as_of``/``as_of_note`` for a date.

        Parameters
        ----------
        lon, lat
            One coordinate each, in ``crs``.
        address
            An address instead of a coordinate.
        crs, city, as_of
            See :meth:`lookup_many`.

        Returns
        -------
        dict
            The fields of :data:`geo.lookup.ANSWER_FIELDS` and their companions.
        """
        if address is None and as_of is None and lon is not None and lat is not None and len(lon) == len(lat) == 1:
            record = lookup_point(self.get_index(city=city), float(lon[0]), float(lat[0]), crs=crs)
            if record is not None:  # from the index's per-grid answers; a bad coordinate is refused as a batch
                if record["covered"] is False:
                    self._count_blind_spot(record)
                return record
        if address is not None:
            columns = self.lookup_many(addresses=[address], city=city, as_of=as_of)
        else:
            columns = self.lookup_many(lon=lon, lat=lat, crs=crs, city=city, as_of=as_of)
        record = columns_to_records(columns)[0]
        record.update(self.describe_as_of(as_of, self.get_index(city=city, as_of=as_of)))
        return record

    def describe_as_of(self, as_of: date | None, index: LookupIndex) -> dict:
        """``as_of`` and the note saying which grid version answered (empty without a date).

        Parameters
        ----------
        as_of
            The date asked for.
        index
            The index that answered.

        Returns
        -------
        dict
        """
        if as_of is None:
            return {}
        created = self.workspace.grid_version(int(index.version)).created
        note = AS_OF_BEFORE_NOTE if self.workspace.version_as_of(as_of) is None else AS_OF_NOTE
        return {"as_of": as_of.isoformat(), "as_of_note": note.format(date=as_of.isoformat(), version=index.version,
                                                                      created=created)}

    def run_batch(self, stream: BinaryIO, *, kind: str | None = None, content_type: str | None = None,
                  crs: str | None = None, city: str | None = None, as_of: date | None = None, fmt: str = "json",
                  file: str | None = None) -> "tuple[BatchPlan, Iterator[str]]":
        """Check a whole batch, then the text pieces of its answer, computed chunk by chunk as they are taken.

        Parameters
        ----------
        stream
            The batch (CSV or JSON), seekable: it is read twice (checked, then answered).
        kind, content_type, file
            How to read it (:func:`gridcover.lookup_batch.check_batch`).
        crs
            Of a CSV batch's coordinates (a JSON batch may name its own).
        city, as_of
            See :meth:`lookup_many`.
        fmt
            ``json``, ``ndjson`` or ``csv``.

        Returns
        -------
        tuple of BatchPlan and an iterator of str

        Raises
        ------
        gridcover.lookup_batch.BatchError
            Naming every bad row.
        """
        from gridcover.lookup_batch import answer_batch, charset_of, check_batch, write_answers

        plan = check_batch(stream, kind=kind, content_type=content_type, encoding=charset_of(content_type), file=file)
        crs = plan.crs or crs or "wgs84"
        to_wgs84(np.zeros(0), np.zeros(0), crs)  # an unknown crs is refused before anything is answered
        index = self.get_index(city=city, as_of=as_of)
        log = self.workspace.blind_spots()
        head = {"count": plan.count, **self.describe_as_of(as_of, index)}
        frames = answer_batch(index, stream, plan, crs=crs, record=None if log is None else log.record)
        return plan, write_answers(frames, plan, fmt=fmt, head=head)
