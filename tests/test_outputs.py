"""The output folder: what the writer refuses to replace."""

import pytest

from geo.errors import ConfigError


def test_write_outputs_never_replaces_a_folder_holding_what_was_analysed(tiny_dir):
    from gridcover.engines.single import analyze
    from gridcover.io.outputs import write_outputs

    analysis = analyze(tiny_dir)
    before = sorted(p.name for p in tiny_dir.iterdir())
    for out in (tiny_dir, tiny_dir.parent):
        with pytest.raises(ConfigError, match=r"(is|holds) the input .*\.geojson"):
            write_outputs(analysis, out)
    assert sorted(p.name for p in tiny_dir.iterdir()) == before
