"""``gridcover serve`` as a user runs it: the address to open, one-line errors, keys from a file."""

from __future__ import annotations

import json
import math
import socket

import httpx
from serving import ServerProcess, keys_file, sample_workspace

from gridcover.cli import build_parser, main


def test_serve_is_a_subcommand_with_its_documented_options():
    args = build_parser().parse_args(["serve", "out/sample"])
    assert (args.host, args.port, args.keys, args.k, args.basemap) == ("127.0.0.1", 8000, None, 5, None)


def test_serve_prints_the_address_and_answers(tmp_path):
    with ServerProcess(sample_workspace(), keys=keys_file()) as server:
        assert f"open {server.url}/" in server.first_line
        assert "4 API keys" in server.first_line
        # generous timeouts: the first read of a layer (29,574 households) is slow on a busy 2-core machine
        assert httpx.get(server.url + "/", headers={"Accept": "text/html"}, timeout=60).text.startswith("<!doctype html>")
        assert httpx.get(server.url + "/collections/households/items", timeout=60).status_code == 401
        assert httpx.get(server.url + "/collections/households/items?limit=1",
                         headers={"X-API-Key": "k-admin"}, timeout=60).status_code == 200


def test_a_missing_workspace_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gridcover: error: no workspace at") and "\n" not in err


def test_a_bad_keys_file_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "keys.json"
    bad.write_text(json.dumps({"k1": {"role": "mayor"}}), encoding="utf-8")
    assert main(["serve", str(sample_workspace()), "--keys", str(bad)]) == 2
    assert "role must be one of" in capsys.readouterr().err


def test_a_port_in_use_is_one_line_and_exit_2(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(sample_workspace()), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


def test_several_workers_answer_the_same_tiles_and_each_honours_keys_and_k(tmp_path):
    import mapbox_vector_tile
    from fastapi.testclient import TestClient

    from api.app import create_app
    from gridcover.store import open_workspace

    workspace = open_workspace(sample_workspace())
    grids = workspace.read("grids")
    lon, lat = grids.geometry.iloc[0].representative_point().coords[0]
    x = int((lon + 180) / 360 * 2 ** 13)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** 13)
    path = f"/tiles/grids/13/{x}/{y}.mvt"
    in_process = TestClient(create_app(workspace, k=30)).get(path).content
    with ServerProcess(sample_workspace(), keys=keys_file(), extra=("--workers", "2", "--k", "30")) as server:
        assert "2 processes" in server.first_line
        for _ in range(12):  # a new connection each time: the kernel hands them to either process
            with httpx.Client(timeout=60) as client:
                tile = client.get(server.url + path)
                assert tile.status_code == 200 and tile.content == in_process
                assert client.get(server.url + "/collections/households/items?limit=1").status_code == 401
                assert client.get(server.url + "/collections/households/items?limit=1",
                                  headers={"X-API-Key": "k-admin"}).status_code == 200
    features = mapbox_vector_tile.decode(in_process)["grids"]["features"]
    truth = grids.set_index("id")["elderly_alone"]
    assert any(0 < truth[f["properties"]["id"]] < 30 and "elderly_alone" not in f["properties"] for f in features)


def test_workers_must_be_a_positive_count(capsys):
    assert main(["serve", str(sample_workspace()), "--workers", "0"]) == 2
    assert "--workers 0: must be 1..64" in capsys.readouterr().err
