"""``gridcover serve`` as a user runs it: the address to open, one-line errors, keys from a file."""

from __future__ import annotations

import json
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
