"""Text files as users have them: UTF-8 (with or without a byte-order mark) or GB18030, told apart by their bytes.

Spreadsheets in China save CSV as GB18030 (GBK) by default; everything else writes UTF-8, Excel with a BOM.
:func:`detect_encoding` reads a file's bytes up to the first non-ASCII ones and decides: a BOM means UTF-8;
bytes that decode as UTF-8 mean UTF-8 (GB18030 text with Chinese characters almost never does); bytes that
decode as GB18030 mean GB18030 (a stray bad byte among them is left for the reader to name). A file of ASCII
only is UTF-8 (the two agree on ASCII).

Example
-------
>>> detect_encoding(io.BytesIO("编号,地址\\n".encode("gb18030")))
'gb18030'
"""

from __future__ import annotations

import codecs
import io
import os
import re
from typing import BinaryIO

#: The encodings :func:`detect_encoding` answers (Python codec names).
ENCODINGS = ("utf-8-sig", "utf-8", "gb18030")
#: Names a caller may give for them (an HTTP ``charset``, a config value), lower case.
ALIASES = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8-sig", "gb18030": "gb18030", "gbk": "gb18030",
           "gb2312": "gb18030", "cp936": "gb18030"}
_BLOCK = 1 << 16
#: How many bytes from the first non-ASCII one are decoded to decide.
_WINDOW = 1 << 12
_NON_ASCII = re.compile(rb"[\x80-\xff]")
#: Matches the characters :func:`open_text` puts for bytes that did not decode (lone surrogates).
UNDECODABLE = "[\udc80-\udcff]"


class EncodingError(ValueError):
    """Bytes that are neither UTF-8 nor GB18030 text."""


def detect_encoding(source: str | os.PathLike | BinaryIO) -> str:
    """``'utf-8-sig'``, ``'utf-8'`` or ``'gb18030'`` for a file (a path, or a seekable binary stream, read from
    its start and left where it was); :class:`EncodingError` when its first non-ASCII bytes are neither.

    >>> detect_encoding(io.BytesIO(b"\\xef\\xbb\\xbflon,lat\\n"))
    'utf-8-sig'
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as stream:
            return detect_encoding(stream)
    start = source.tell()
    source.seek(0)
    try:
        head = source.read(len(codecs.BOM_UTF8))
        if head == codecs.BOM_UTF8:
            return "utf-8-sig"
        block = head
        while True:
            if not block.isascii():
                i = _NON_ASCII.search(block).start()
                sample = block[i:i + _WINDOW]
                if len(sample) < _WINDOW:
                    sample += source.read(_WINDOW - len(sample))
                return _decide(sample, complete=len(sample) < _WINDOW)
            block = source.read(_BLOCK)
            if not block:
                return "utf-8"
    finally:
        source.seek(start)


def _decide(sample: bytes, *, complete: bool) -> str:
    """UTF-8 if it decodes ``sample`` (a cut last character is allowed unless complete), else GB18030 if it
    does; with a bad byte in both, the one that decodes more before it (the reader then names the row)."""
    reached = {}
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)("strict").decode(sample, final=complete)
            return encoding
        except UnicodeDecodeError as exc:
            reached[encoding] = exc.start
    best = max(reached, key=reached.get)
    if reached[best] == 0:
        raise EncodingError("the text is neither UTF-8 nor GB18030 (save it as UTF-8 CSV)")
    return best


def open_text(stream: BinaryIO, encoding: str) -> io.TextIOWrapper:
    """A text view of a binary stream for :mod:`csv` (``newline=""``); bytes that do not decode become lone
    surrogates (``surrogateescape``), so a reader can name the row holding them instead of stopping."""
    return io.TextIOWrapper(stream, encoding=encoding, errors="surrogateescape", newline="")

