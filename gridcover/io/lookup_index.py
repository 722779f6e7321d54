"""The prepared lookup index (查询索引文件): the lookup index of a workspace saved beside it, so that a command
answers in a fraction of a second instead of reading the layers and building the index on every call.

``lookup_index.npz`` lies in the output folder, next to ``workspace.gpkg`` (never in a data folder): the arrays
of :func:`geo.lookup.index_arrays` (numbers, fixed-width text, WKB bytes — read back with ``allow_pickle=False``,
so the file can hold no code), with the identity of the GeoPackage it was built from (inode, modification time
and size: a new analysis, a redraw or an edit in place in QGIS each give another) and the city addresses were
read in. :meth:`PreparedIndex.load` gives ``None`` for a missing, unreadable or stale file, so a stale index is
never used; :meth:`PreparedIndex.save` writes atomically (a reader sees the old file or the new one) and not at
all when the workspace changed while the index was built, or when the folder is read-only.

Example
-------
>>> prepared = PreparedIndex("out/sample")                          # doctest: +SKIP
>>> index = prepared.load(city=None)                                # doctest: +SKIP
>>> if index is None:                                               # doctest: +SKIP
...     identity = prepared.identity()
...     index = build_store_index(open_workspace("out/sample"))
...     prepared.save(index, city=None, identity=identity)
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from geo.lookup import LookupIndex, index_arrays, index_of_arrays
from gridcover.io.paths import write_atomically

#: The file's name, in the workspace's folder (listed in :data:`gridcover.io.paths.LATER_FILES`).
FILE = "lookup_index.npz"
#: Bumped when the arrays of :func:`geo.lookup.index_arrays` change meaning: an older file is built again.
FORMAT = 1
_META = ("format", "source", "city")


def file_identity(path: str | os.PathLike) -> str:
    """Inode, modification time (ns) and size of a file: another after every replacement or edit of it."""
    st = os.stat(path)
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


class PreparedIndex:
    """The prepared lookup index of the GeoPackage workspace at ``path`` (its folder or its ``.gpkg``).

    The last index loaded is kept while the GeoPackage stays the same file, so one command asking several
    times reads the file once.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        self.gpkg = path / "workspace.gpkg" if path.is_dir() else path
        self.path = self.gpkg.with_name(FILE)
        self._loaded: tuple[tuple[str, str], LookupIndex] | None = None

    def identity(self) -> str | None:
        """The workspace file's identity now (``None`` when there is none)."""
        try:
            return file_identity(self.gpkg)
        except OSError:
            return None

    def load(self, *, city: str | None) -> LookupIndex | None:
        """The saved index, if it was built from the workspace as it is now and for ``city``; else ``None``."""
        identity = self.identity()
        if identity is None:
            return None
        key = (identity, city or "")
        if self._loaded is not None and self._loaded[0] == key:
            return self._loaded[1]
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                if (int(stored["format"]) != FORMAT or str(stored["source"]) != identity
                        or str(stored["city"]) != key[1]):
                    return None
                arrays = {name: stored[name] for name in stored.files if name not in _META}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # missing, half-copied by hand or from another release: built again
        index = index_of_arrays(arrays)
        self._loaded = (key, index)
        return index

    def save(self, index: LookupIndex, *, city: str | None, identity: str | None) -> bool:
        """Write ``index``, built from the workspace whose identity was ``identity`` before the build; nothing is
        written (``False``) if the workspace is another file now, or the folder cannot be written."""
        if identity is None or self.identity() != identity:
            return False
        arrays = index_arrays(index)  # builds the address index too (it reads the households)
        if self.identity() != identity:
            return False
        arrays.update(format=np.asarray(FORMAT), source=np.asarray(identity), city=np.asarray(city or ""))

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                np.savez(out, **arrays)

        try:
            write_atomically(self.path, write)
        except OSError:
            return False  # a read-only folder still answers lookups, building the index each time
        self._loaded = ((identity, city or ""), index)
        return True
