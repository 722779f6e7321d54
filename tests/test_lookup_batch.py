"""Lookup batches read in chunks: what a caller sees whatever the chunk and block sizes (gridcover/lookup_batch.py)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from geo.lookup import build_index, lookup_points
from gridcover import lookup_batch
from gridcover.lookup_batch import BatchError, answer_batch, check_batch, write_answers
from lookup_data import layers, xy

GOOD = "{},{}".format(*xy(1, 1))


@pytest.fixture(scope="module")
def index():
    frames = layers()
    return build_index(frames["grids"], buildings=frames["buildings"], estates=frames["estates"],
                       communities=frames["communities"], streets=frames["streets"],
                       households=frames["households"][["address", "building_id"]], version=1)


def refused(text: str | bytes, **options) -> BatchError:
    with pytest.raises(BatchError) as caught:
        check_batch(io.BytesIO(text.encode() if isinstance(text, str) else text), **options)
    return caught.value


def test_row_numbers_are_spreadsheet_rows_across_chunks(monkeypatch):
    monkeypatch.setattr(lookup_batch, "CHUNK_ROWS", 3)
    rows = [GOOD] * 12
    rows[0], rows[3], rows[4], rows[10] = "east,30.5", "", "104.001", "104.0,91"
    error = refused("lon,lat\n" + "\n".join(rows) + "\n\n\n")  # the blank rows at the end are not rows
    assert [(e.row, e.field) for e in error.errors] == [(2, "lon"), (5, None), (6, None), (12, "lon/lat")]
    assert error.errors[1].message.startswith("the row is empty")


def test_only_the_first_errors_are_listed_but_all_are_counted(monkeypatch):
    monkeypatch.setattr(lookup_batch, "CHUNK_ROWS", 4)
    error = refused("lon,lat\n" + "x,1\n" * 30, max_errors=5)
    assert [e.row for e in error.errors] == [2, 3, 4, 5, 6] and error.total == 30
    assert "30 problems" in str(error) and "and 25 more" in str(error)


def test_a_quote_left_open_stops_the_reading_at_its_row():
    error = refused(f'lon,lat\nx,1\n{GOOD}\n"104.0,30.5\n{GOOD}\n' + f"{GOOD}\n" * 10)
    assert [e.row for e in error.errors] == [2, 4] and "never closed" in error.errors[1].message


def test_json_values_split_between_read_blocks_are_read_whole(monkeypatch, index):
    monkeypatch.setattr(lookup_batch, "_READ_CHARS", 5)
    lon, lat = xy(np.array([0.3, 2.5, 12.0]), np.array([3.9, 1.5, 0.5]))
    body = json.dumps({"items": [{"lon": a, "lat": b} for a, b in zip(lon.tolist(), lat.tolist())] +
                       [{"address": "锦华苑5栋"}], "crs": "wgs84"}).encode()
    stream = io.BytesIO(body)
    plan = check_batch(stream)
    assert (plan.count, plan.points, plan.addresses, plan.crs) == (4, 3, 1, "wgs84")
    frame = next(answer_batch(index, stream, plan))
    assert frame["lon_wgs84"].tolist()[:3] == np.round(lon, 8).tolist()
    assert frame["grid_id"].tolist()[:2] == ["G3", "G10"] and pd.isna(frame["grid_id"].iloc[2])
    assert (frame["grid_id"].iloc[3], frame["building_id"].iloc[3]) == ("G3", "B4")


def test_a_batch_mixing_points_and_addresses_keeps_its_order_across_chunks(monkeypatch, index):
    monkeypatch.setattr(lookup_batch, "CHUNK_ROWS", 2)
    lon, lat = xy(np.array([1.0, 3.0, 12.0]), np.array([1.0, 3.0, 0.5]))
    text = (f"lon,lat,address\n{lon[0]},{lat[0]},\n,,锦华苑5栋\n{lon[1]},{lat[1]},\n,,翠苑A座\n{lon[2]},{lat[2]},\n")
    stream = io.BytesIO(text.encode())
    plan = check_batch(stream)
    out = json.loads("".join(write_answers(answer_batch(index, stream, plan), plan, head={"count": plan.count})))
    assert out["count"] == 5
    assert [r["grid_id"] for r in out["results"]] == ["G2", "G3", "G4", "G2", None]
    assert [r["building_id"] for r in out["results"]][1::2] == ["B4", "B5"]
    expected = lookup_points(index, lon, lat)
    assert [out["results"][i]["covered"] for i in (0, 2, 4)] == expected["covered"].tolist()


def test_bytes_that_do_not_decode_are_named_by_their_row():
    body = "address\n锦华苑5栋\n".encode() + b"\xff\xfe 3\n" + "翠苑A座\n".encode()
    error = refused(body)
    assert [(e.row, e.field) for e in error.errors] == [(3, "address")] and "not UTF-8" in error.errors[0].message


def test_an_empty_batch_is_refused_and_a_header_alone_is_zero_items():
    assert "empty" in str(refused(""))
    assert check_batch(io.BytesIO(b"lon,lat\n")).count == 0
    assert "no lat column" in str(refused("lon,x\n1,2\n"))
