"""What a killed run leaves behind, and a folder nobody can write (root included), for the tests of gridcover/io/paths.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest


def dead_pid() -> int:
    """The id of a process that ran and is gone (started, finished and reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def dead_owner() -> str:
    """The owner part of a temporary name (this host, a process id) made by a process that is gone."""
    from gridcover.io.paths import owner

    return owner(dead_pid())


def plant(path: Path, *, size: int = 1 << 20) -> Path:
    """A leftover folder holding one file of ``size`` bytes (a killed run's half-written output)."""
    path.mkdir(parents=True)
    (path / "households.geojson").write_bytes(b"x" * size)
    return path


@contextmanager
def unwritable_folder(path: Path):
    """``path`` (an existing folder) made unwritable for this process. As root, whom permission bits do not
    stop, it is made immutable with ``chattr +i`` (ext4, xfs, btrfs; needs CAP_LINUX_IMMUTABLE); the test is
    skipped where neither works."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if not chattr or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root and chattr +i is not available: no folder root cannot write")
    try:
        yield path
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)
