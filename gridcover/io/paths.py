"""Where gridcover writes: outputs that cannot harm what a command reads, and gridcover's temporary names.

Every command that writes checks its output before it does any work (:func:`prepare_output_folder`,
:func:`check_output_file`). Refused with a :class:`~geo.errors.ConfigError` (exit status 2), nothing
touched:

- an output that is, lies inside or holds what the command reads (the data folder, the workspace, a
  proposal). Paths are compared as the folders they are (device and inode of every existing folder on
  the way), so relative paths, ``..``, symlinks and bind mounts name the same place;
- an output folder that holds files gridcover did not write (only a previous output, whose
  ``summary.json`` lists its files, is replaced; the user's other files are never deleted);
- a place that cannot be written (tried by making a folder there, which also fails for root on a
  read-only or immutable folder).

Every temporary file and folder gridcover makes is named here, with the machine (short host name) and
the id of the process making it:

==========================================  =========================================================
``.OUT.tmp-HOST-PID-XXXXXXXX``              an output folder or file being written, beside ``OUT``
``.OUT.old-HOST-PID-XXXXXXXX``              the previous output between the two renames replacing it
``.OUT.parts-HOST-PID-XXXXXXXX``            the Dask engine's parts of the output
``$TMPDIR/gridcover-KIND-HOST-PID-XXXX``    a scratch folder (``analyze --db`` without ``--out``)
==========================================  =========================================================

A killed run leaves them behind. The next run into the same place removes those made on this machine by a
process that is gone (:func:`remove_leftovers`, :func:`scratch_path`) and nothing else: not a run still
going, not one of another machine sharing the folder; a previous output left as ``.OUT.old-*`` with no
``OUT`` (a run killed between its two renames) is put back instead of deleted.

Example
-------
An output inside the data folder it reads is refused; a file is written whole or not at all:

>>> import tempfile
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> (root / "data").mkdir()
>>> prepare_output_folder(root / "data" / "out", reads=reads_of(root / "data", "data"))
Traceback (most recent call last):
...
geo.errors.ConfigError: ...
>>> out = prepare_output_folder(root / "out", reads=reads_of(root / "data", "data"))
>>> out.mkdir()
>>> write_atomically(out / "report.json", lambda tmp: tmp.write_text("{}")).name
'report.json'
>>> sorted(p.name for p in out.iterdir())
['report.json']
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from geo.errors import ConfigError

#: Kinds of temporary names beside an output, see the module's table.
TEMP_KINDS = ("tmp", "old", "parts")
#: Files gridcover adds to an output folder after writing it: the workspace's lock, the redraw drafts
#: (gridcover.store.proposals.SQLiteProposalStore.FILE), the lookup blind-spot log
#: (gridcover.store.blindspot_log.BlindSpotLog.FILE), the case store (gridcover.io.outputs.CASES_FILE) and its lock,
#: their SQLite side files, and the prepared lookup index (gridcover.io.lookup_index.FILE).
LATER_FILES = ("workspace.gpkg.lock", "cases.sqlite.lock", "lookup_index.npz") + tuple(
    base + side for base in ("workspace.gpkg", "redraw_proposals.sqlite", "lookup_blind_spots.sqlite", "cases.sqlite")
    for side in ("", "-journal", "-wal", "-shm"))

Reads = Iterable[tuple[str, "str | os.PathLike"]]


# ---- temporary names and their cleanup -------------------------------------------------------------

#: The owner part of a temporary name: host (absent in names made before hosts were named) and process id.
_OWNER = r"(?:(?P<host>[A-Za-z0-9-]+?)-)?(?P<pid>\d+)-[a-z0-9_]+"


def owner(pid: int | None = None) -> str:
    """The owner part of this machine's temporary names for process ``pid`` (default this one): ``web1-4711``."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0])[:40].strip("-") or "localhost"
    return f"{host}-{os.getpid() if pid is None else pid}"


def _gone(match: re.Match) -> bool:
    """Whether the process that made a temporary name is gone: it ran on this machine and runs no more."""
    host = match["host"]
    return (host is None or host == owner().rsplit("-", 1)[0]) and not process_alive(int(match["pid"]))


def _temp_pattern(name: str) -> re.Pattern:
    """gridcover's temporary names beside a file or folder called ``name``."""
    return re.compile(rf"\.{re.escape(name)}\.(?P<kind>{'|'.join(TEMP_KINDS)})-{_OWNER}(\.[a-z0-9]+)?")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs on this machine (a zombie, killed and not yet reaped, is gone)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OverflowError, OSError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:][:1] != "Z"
    except (OSError, ValueError):
        return True


def _remove(path: Path) -> None:
    """Remove a file, a symlink (not what it points to) or a folder tree."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _changed(path: Path) -> float:
    try:
        return path.lstat().st_ctime  # a rename sets it: when the output was moved aside
    except OSError:
        return 0.0


def remove_leftovers(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and folders killed runs of gridcover left beside ``target``.

    Only names of :data:`TEMP_KINDS` made for ``target`` by a process that is gone are touched; a left
    previous output (``.OUT.old-*``) comes back as ``target`` when ``target`` is missing. Returns what
    was removed.
    """
    target = Path(target)
    pattern = _temp_pattern(target.name)
    try:
        found = [(Path(e.path), pattern.fullmatch(e.name)) for e in os.scandir(target.parent)]
    except OSError:
        return []
    dead = [(path, m["kind"]) for path, m in found if m and _gone(m)]
    olds = sorted((p for p, kind in dead if kind == "old"), key=_changed)  # the newest is the last output
    if olds and not os.path.lexists(target) and olds[-1].is_dir() and not olds[-1].is_symlink():
        try:
            olds[-1].rename(target)
            dead = [(p, kind) for p, kind in dead if p != olds[-1]]
        except OSError:
            pass
    for path, _ in dead:
        _remove(path)
    return [p for p, _ in dead]


def temp_dir(target: str | os.PathLike, kind: str = "tmp") -> Path:
    """A new empty folder beside ``target`` with a temporary name of ``kind`` and an ordinary folder's
    permissions (``tempfile.mkdtemp`` makes it private)."""
    target = Path(target)
    path = Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-{owner()}-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)
    return path


def temp_file(target: str | os.PathLike, *, suffix: str = "") -> Path:
    """A temporary name beside ``target`` for a file about to be written; nothing is created (the writer
    makes the file, with an ordinary file's permissions)."""
    target = Path(target)
    return target.with_name(f".{target.name}.tmp-{owner()}-{secrets.token_hex(4)}{suffix}")


def write_atomically(target: str | os.PathLike, write: Callable[[Path], None], *, suffix: str = "") -> Path:
    """Call ``write(tmp)`` for a temporary name beside ``target``, then move it onto ``target``: a reader sees
    the old file or the new one, never half of one. Leftovers of killed writes of ``target`` are removed
    first."""
    target = Path(target)
    remove_leftovers(target)
    tmp = temp_file(target, suffix=suffix)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def scratch_path(kind: str) -> Path:
    """A new name for a scratch folder of this process in the system's temporary folder (not created);
    the scratch folders of ``kind`` whose process is gone are removed first."""
    base = Path(tempfile.gettempdir())
    pattern = re.compile(rf"gridcover-{re.escape(kind)}-{_OWNER}")
    try:
        entries = list(os.scandir(base))
    except OSError:
        entries = []
    for e in entries:
        m = pattern.fullmatch(e.name)
        if m and _gone(m):
            _remove(Path(e.path))
    return base / f"gridcover-{kind}-{owner()}-{secrets.token_hex(4)}"


# ---- checks before a command writes ----------------------------------------------------------------

def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _chain(path: Path) -> list[tuple[int, int] | None]:
    """The identity of ``path`` (``None`` when it does not exist) and of every existing folder above it."""
    real = Path(os.path.realpath(path))
    return [_identity(real)] + [i for i in map(_identity, real.parents) if i is not None]


def _check_overlap(out: Path, reads: Reads, option: str, *, folder: bool) -> None:
    out_chain = _chain(out)
    for label, read in reads:
        read = Path(read)
        here = _identity(Path(os.path.realpath(read)))
        if here is None:
            continue
        shown = label
        if out_chain[0] == here:
            raise ConfigError(f"{option} {out} is {shown}: gridcover never writes over what it reads; "
                              f"choose another {'folder' if folder else 'file'}")
        if here in out_chain[1:]:
            raise ConfigError(f"{option} {out} is inside {shown}: gridcover writes nothing into what it reads; "
                              f"choose a {'folder' if folder else 'file'} outside it")
        if out_chain[0] is not None and out_chain[0] in _chain(read)[1:]:
            why = "replacing the output would delete it" if folder else "gridcover never writes over what it reads"
            raise ConfigError(f"{option} {out} holds {shown}: {why}; choose a {'folder' if folder else 'file'} "
                              "elsewhere")


def _check_writable(out: Path, option: str) -> None:
    """Make (and remove) a folder where ``out``'s temporary names go: the only test root cannot pass by."""
    place = out.parent
    while not os.path.lexists(place) and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise ConfigError(f"{option} {out}: {place} is a file, not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=f".{out.name}.tmp-{owner()}-", dir=place)
    except OSError as exc:
        raise ConfigError(f"{option} {out}: cannot write in the folder {place} ({exc.strerror or exc}); "
                          "choose a folder you can write") from None
    os.rmdir(probe)


def output_files(folder: str | os.PathLike) -> set[str] | None:
    """The names in ``folder`` that gridcover wrote there, or ``None`` if it is not a previous output of
    ``gridcover analyze`` (no ``summary.json`` listing its ``outputs``)."""
    try:
        summary = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    listed = summary.get("outputs") if isinstance(summary, dict) else None
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        return None
    return set(listed) | set(LATER_FILES)


def _foreign_files(folder: Path) -> list[str]:
    """Entries of an existing output folder that gridcover did not write (all of them for a folder that is
    not a previous output)."""
    names = sorted(os.listdir(folder))
    ours = output_files(folder)
    if ours is None:
        return names
    patterns = [_temp_pattern(n) for n in ours]
    return [n for n in names if n not in ours and not any(p.fullmatch(n) for p in patterns)]


def reads_of(path: str | os.PathLike, what: str) -> list[tuple[str, Path]]:
    """What a command reading ``path`` (the ``what``: data, workspace) must not write over, as ``(description,
    path)`` pairs: the path, and for a GeoPackage in a previous output folder (``OUT/workspace.gpkg``) that
    folder too (the next ``analyze`` replaces it whole)."""
    path = Path(path)
    if not path.is_file():
        return [(f"the {what} folder {path}", path)]
    reads = [(f"the {what} file {path}", path)]
    if output_files(path.parent) is not None:
        reads.append((f"the output folder {path.parent} holding the {what} file", path.parent))
    return reads


def prepare_output_folder(out: str | os.PathLike, *, reads: Reads = (), option: str = "--out") -> Path:
    """Check an output folder before any work, remove leftovers of killed runs beside it, return its real path.

    Raises :class:`~geo.errors.ConfigError` when ``out`` is, lies inside or holds one of ``reads``
    (``(description, path)`` pairs: ``("the data folder data/city", "data/city")``, see :func:`reads_of`), is a file, holds files that gridcover did
    not write, or cannot be written.
    """
    given = Path(out)
    reads = list(reads)
    _check_overlap(given, reads, option, folder=True)
    if os.path.lexists(given) and not given.is_dir():
        raise ConfigError(f"{option} {given} exists and is not a folder")
    if given.is_dir():
        foreign = _foreign_files(given)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise ConfigError(f"{option} {given} holds files gridcover did not write ({shown}); it is not replaced, "
                              "nothing was changed: choose a new or empty folder, or a previous output of "
                              "gridcover analyze")
    _check_writable(given, option)
    real = Path(os.path.realpath(given))
    remove_leftovers(real)
    return real


def check_output_file(out: str | os.PathLike, *, reads: Reads = (), option: str = "--out") -> Path:
    """Check an output file before any work (the counterpart of :func:`prepare_output_folder`); returns its
    path. Refused: a file that is one of ``reads`` or lies inside one of them, a folder, a place that cannot be
    written."""
    out = Path(out)
    _check_overlap(out, list(reads), option, folder=False)
    if out.is_dir():
        raise ConfigError(f"{option} {out} is a folder; give the name of a file")
    _check_writable(out, option)
    return out
