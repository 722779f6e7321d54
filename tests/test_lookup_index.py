"""The prepared lookup index beside a workspace: saved once, loaded while the workspace is the same file, never stale."""

from __future__ import annotations

import os
import time

import numpy as np

from geo.lookup import columns_to_records, lookup_addresses, lookup_points
from gridcover.io.lookup_index import FILE, PreparedIndex
from gridcover.io.paths import LATER_FILES
from gridcover.services.lookup import build_store_index
from gridcover.store import open_workspace
from lookup_data import write_workspace, xy


def _saved(folder):
    prepared = PreparedIndex(folder)
    identity = prepared.identity()
    index = build_store_index(open_workspace(folder))
    assert prepared.save(index, city=None, identity=identity)
    return prepared, index


def test_the_saved_index_lies_beside_the_workspace_and_answers_as_the_built_one(tmp_path):
    folder = write_workspace(tmp_path / "ws")
    _, index = _saved(folder)
    assert (folder / FILE).is_file() and FILE in LATER_FILES  # a new analysis into the folder accepts it
    loaded = PreparedIndex(folder).load(city=None)  # a new command: read from the file
    lon, lat = np.array([xy(1, 1), xy(2, 2), xy(12, 0.5), xy(7.5, 2)]).T
    assert columns_to_records(lookup_points(loaded, lon, lat)) == columns_to_records(lookup_points(index, lon, lat))
    assert columns_to_records(lookup_addresses(loaded, ["锦华苑三号楼"])) == \
        columns_to_records(lookup_addresses(index, ["锦华苑三号楼"]))


def test_a_workspace_written_again_or_edited_in_place_makes_the_saved_index_stale(tmp_path):
    folder = write_workspace(tmp_path / "ws")
    _saved(folder)
    gpkg = folder / "workspace.gpkg"
    later = time.time() + 5
    os.utime(gpkg, (later, later))  # an edit in place (QGIS) changes the file's time
    assert PreparedIndex(folder).load(city=None) is None
    other = write_workspace(tmp_path / "other")
    os.replace(other / "workspace.gpkg", gpkg)  # a new analysis replaces the file
    assert PreparedIndex(folder).load(city=None) is None


def test_another_city_a_damaged_file_or_a_changed_workspace_is_not_used_nor_written(tmp_path):
    folder = write_workspace(tmp_path / "ws")
    prepared, index = _saved(folder)
    assert PreparedIndex(folder).load(city="北京市") is None
    (folder / FILE).write_bytes(b"PK\x03\x04 not a zip")
    assert PreparedIndex(folder).load(city=None) is None
    identity = prepared.identity()
    later = time.time() + 5
    os.utime(folder / "workspace.gpkg", (later, later))  # changed while the index was built
    assert prepared.save(index, city=None, identity=identity) is False
    assert not any(p.name.startswith(f".{FILE}.tmp") for p in folder.iterdir())


def test_no_workspace_no_index(tmp_path):
    assert PreparedIndex(tmp_path / "nowhere").load(city=None) is None
    assert PreparedIndex(tmp_path / "nowhere").identity() is None
