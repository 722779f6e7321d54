"""Helpers of the server tests: the sample workspace (analysed once per test run) and a real server process.

Not a test module: test_api_ogc, test_tiles, test_webmap and test_serve_cli import it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
#: The street of the sample district (太升路街道) and the keys the tests use.
SAMPLE_STREET = "510105001000"
KEYS = {
    "k-admin": {"role": "admin"},
    "k-office": {"role": "street_office", "streets": [SAMPLE_STREET]},
    "k-other-office": {"role": "street_office", "streets": ["999999999999"]},
    "k-lookup": {"role": "lookup"},
}


@lru_cache(maxsize=1)
def sample_workspace() -> Path:
    """``gridcover analyze sample_geojson`` into a temporary folder, once per test run (~10 s)."""
    from gridcover.engines.single import analyze
    from gridcover.io.outputs import write_outputs

    out = Path(tempfile.mkdtemp(prefix="gridcover-test-ws-")) / "sample"
    write_outputs(analyze(REPO / "sample_geojson"), out)
    return out


@lru_cache(maxsize=1)
def keys_file() -> Path:
    path = Path(tempfile.mkdtemp(prefix="gridcover-test-keys-")) / "keys.json"
    path.write_text(json.dumps(KEYS), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``gridcover serve`` in its own process on a free loopback port (GDAL and Chromium talk to it)."""

    def __init__(self, workspace: Path, *, keys: Path | None = None, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "gridcover.cli", "serve", str(workspace), "--port", str(self.port), *extra]
        if keys is not None:
            cmd += ["--keys", str(keys)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.first_line = self.process.stdout.readline()
        # it prepares every tiled layer for every zoom before it answers: seconds, more on a busy 2-core machine
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = f"gridcover serve exited with {self.process.returncode}: {self.process.stderr.read()}"
                raise RuntimeError(msg)
            try:
                httpx.get(self.url + "/conformance", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gridcover serve did not answer within 120 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
