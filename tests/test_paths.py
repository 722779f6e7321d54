"""Where gridcover writes: outputs that cannot harm what a command reads, and the cleanup of killed runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from geo.errors import ConfigError
from gridcover.io.paths import (check_output_file, owner, prepare_output_folder, process_alive, reads_of, remove_leftovers,
                       scratch_path, temp_dir, temp_file, write_atomically)
from leftovers import dead_owner, dead_pid, plant


def test_a_process_is_alive_until_it_is_gone_and_a_zombie_is_gone():
    assert process_alive(os.getpid())
    assert not process_alive(dead_pid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":  # exited, not yet reaped
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not process_alive(child.pid)
    child.wait()


def test_temporary_names_carry_the_process_and_are_hidden_beside_their_target(tmp_path):
    target = tmp_path / "out"
    folder, file = temp_dir(target, "parts"), temp_file(tmp_path / "r.json", suffix=".json")
    assert folder.parent == tmp_path and folder.name.startswith(f".out.parts-{owner()}-")
    assert oct(folder.stat().st_mode & 0o777) != oct(0o700)  # an ordinary folder, not mkdtemp's private one
    assert file.name.startswith(f".r.json.tmp-{owner()}-") and file.suffix == ".json" and not file.exists()
    assert remove_leftovers(target) == []  # this process's own are never leftovers


def test_only_gridcover_names_of_gone_processes_are_removed(tmp_path):
    dead = dead_owner()
    user = plant(tmp_path / "my-data")
    link = tmp_path / f".out.tmp-{dead}-abcdefgh"
    link.symlink_to(user)  # a leftover name pointing at the user's folder: the link goes, the folder stays
    ours = [plant(tmp_path / f".out.tmp-{dead}-k2j4x9qz"), plant(tmp_path / f".out.old-{dead}-a8c0_d1e")]
    (tmp_path / "out").mkdir()
    removed = remove_leftovers(tmp_path / "out")
    assert sorted(removed) == sorted(ours + [link])
    assert not os.path.lexists(link) and (user / "households.geojson").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-data", "out"]


def test_a_previous_output_left_aside_comes_back_when_the_output_is_missing(tmp_path):
    dead = dead_owner()
    older, newer = plant(tmp_path / f".out.old-{dead}-00000001"), plant(tmp_path / f".out.old-{dead}-00000002")
    (newer / "summary.json").write_text("{}", encoding="utf-8")
    remove_leftovers(tmp_path / "out")
    assert (tmp_path / "out" / "summary.json").is_file() and not older.exists() and not newer.exists()


def test_scratch_folders_of_gone_processes_are_removed(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pid = dead_pid()
    ours = [plant(tmp_path / f"gridcover-analyze-{owner(pid)}-9f8e7d6c"),
            plant(tmp_path / f"gridcover-analyze-{pid}-1764625000123456789")]  # named before hosts were
    foreign = [plant(tmp_path / f"gridcover-analyze-{owner()}-abc"), plant(tmp_path / f"gridcover-sites-{pid}-abc"),
               plant(tmp_path / "gridcover-analyze-notes"), plant(tmp_path / f"gridcover-analyze-db-2-{pid}-abc")]
    path = scratch_path("analyze")
    assert path.parent == tmp_path and path.name.startswith(f"gridcover-analyze-{owner()}-") and not path.exists()
    assert not any(p.exists() for p in ours) and all(p.exists() for p in foreign)


def test_a_hard_link_or_a_symlink_to_what_is_read_is_what_is_read(tmp_path):
    proposal = tmp_path / "proposal.geojson"
    proposal.write_text("{}", encoding="utf-8")
    os.link(proposal, tmp_path / "same.geojson")
    (tmp_path / "alias.geojson").symlink_to(proposal)
    reads = [(f"the proposal {proposal}", proposal)]
    for name in ("same.geojson", "alias.geojson"):
        with pytest.raises(ConfigError, match="is the proposal"):
            check_output_file(tmp_path / name, reads=reads)
    assert check_output_file(tmp_path / "report.json", reads=reads) == tmp_path / "report.json"


def test_an_output_folder_is_checked_against_a_workspace_given_by_its_file(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "workspace.gpkg").write_bytes(b"")
    (ws / "summary.json").write_text('{"outputs": ["summary.json", "workspace.gpkg"]}', encoding="utf-8")
    assert [path for _, path in reads_of(ws / "workspace.gpkg", "data")] == [ws / "workspace.gpkg", ws]
    with pytest.raises(ConfigError, match="is inside the output folder"):
        prepare_output_folder(ws / "new", reads=reads_of(ws / "workspace.gpkg", "data"))
    (tmp_path / "city.gpkg").write_bytes(b"")  # a GeoPackage of data beside other things: only the file is read
    assert prepare_output_folder(tmp_path / "new", reads=reads_of(tmp_path / "city.gpkg", "data")) == tmp_path / "new"


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")

    def half(tmp):
        tmp.write_text("ha", encoding="utf-8")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, half)
    assert target.read_text(encoding="utf-8") == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
    write_atomically(target, lambda tmp: tmp.write_text("new", encoding="utf-8"))
    assert target.read_text(encoding="utf-8") == "new" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_the_files_a_served_workspace_gains_belong_to_the_output():
    from gridcover.io.paths import LATER_FILES
    from gridcover.store.blindspot_log import BlindSpotLog
    from gridcover.store.proposals import SQLiteProposalStore

    assert {SQLiteProposalStore.FILE, BlindSpotLog.FILE, f"{BlindSpotLog.FILE}-wal", "workspace.gpkg.lock"} <= set(LATER_FILES)


def test_a_name_made_on_another_machine_sharing_the_folder_is_left_alone(tmp_path):
    pid = dead_pid()  # gone here, perhaps running there
    theirs = [plant(tmp_path / f".out.tmp-db-2-{pid}-abcdefgh"), plant(tmp_path / f".out.parts-10-0-0-5-{pid}-abcdefgh")]
    mine = plant(tmp_path / f".out.tmp-{owner(pid)}-abcdefgh")
    assert remove_leftovers(tmp_path / "out") == [mine]
    assert all(p.is_dir() for p in theirs)
