"""Text encodings as spreadsheets and GIS tools write them (gridcover/io/textio.py)."""

from __future__ import annotations

import io

import pytest

from gridcover.io.textio import EncodingError, detect_encoding


@pytest.mark.parametrize("data, expected", [
    (b"lon,lat\n104,30\n", "utf-8"),
    ("\ufeff编号,地址\n1,锦华苑\n".encode("utf-8"), "utf-8-sig"),
    ("编号,地址\n1,锦华苑\n".encode("utf-8"), "utf-8"),
    ("编号,地址\n1,锦华苑\n".encode("gb18030"), "gb18030"),
    (b"id,x\n" * 20_000 + "地址\n".encode("gb18030"), "gb18030"),  # the first Chinese text after 100 kB of ASCII
    (b"", "utf-8"),
])
def test_the_encoding_is_told_by_the_first_non_ascii_bytes(data, expected):
    stream = io.BytesIO(data)
    stream.seek(len(data) // 2)
    assert detect_encoding(stream) == expected
    assert stream.tell() == len(data) // 2  # the position is kept


def test_bytes_that_are_neither_utf8_nor_gb18030_are_an_error(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_bytes("name\n锦华苑\n".encode("utf-16"))  # starts with the bytes ff fe: no UTF-8, no GB18030
    with pytest.raises(EncodingError, match="neither UTF-8 nor GB18030"):
        detect_encoding(path)
