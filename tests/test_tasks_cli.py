"""``gridcover tasks``: what a grid worker's supervisor sees on the terminal and in the --out folder."""

from __future__ import annotations

import json

from gridcover.cli import main


def test_one_grid_printed_in_walking_order_with_minutes(sample_analysis, capsys):
    assert main(["tasks", str(sample_analysis[1]), "--date", "2026-12-03", "--grid", "G02-01"]) == 0
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if line.startswith("G02-01"))
    assert "households" in head and "min walking" in head and " from " in head and ("太升南路社区" in head or "党群服务站" in head)
    numbers = [int(line.split()[0]) for line in out.splitlines()
               if line.startswith("  ") and line.split()[0].isdigit()]
    assert numbers[0] == 1 and numbers == sorted(numbers)
    assert "back to the start" in out


def test_out_writes_a_page_and_json_per_grid_and_may_be_written_again(sample_analysis, tmp_path, capsys):
    out = tmp_path / "tasks"
    args = ["tasks", str(sample_analysis[1]), "--date", "2026-12-03", "--worker", "方刚芳", "--out", str(out)]
    assert main(args) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "tasks_G02-01.html" in names and "tasks_G02-01.json" in names and "summary.json" in names
    page = json.loads((out / "tasks_G02-01.json").read_text(encoding="utf-8"))
    assert page["grid"]["worker"] == "方刚芳" and page["route"]["legs"]
    html = (out / "tasks_G02-01.html").read_text(encoding="utf-8")
    assert "走访任务单" in html and "<svg" in html and "@page{size:A4" in html
    assert "http://" not in html and "https://" not in html  # works offline
    assert main(args) == 0  # its own earlier output is replaced


def test_it_refuses_to_write_into_the_workspace_or_a_foreign_folder(sample_analysis, tmp_path, capsys):
    ws = str(sample_analysis[1])
    assert main(["tasks", ws, "--date", "2026-12-03", "--grid", "G02-01", "--out", ws]) == 2
    assert "gridcover never writes over what it reads" in capsys.readouterr().err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep", encoding="utf-8")
    assert main(["tasks", ws, "--date", "2026-12-03", "--grid", "G02-01", "--out", str(foreign)]) == 2
    assert "holds files gridcover did not write (notes.txt)" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_bad_arguments_are_one_line(sample_analysis, capsys):
    ws = str(sample_analysis[1])
    assert main(["tasks", ws, "--date", "2026-12-03", "--grid", "G99"]) == 2
    err = capsys.readouterr().err.strip()  # one line naming some grids a user may have meant
    assert err.startswith("gridcover: error: no grid 'G99' in the workspace (by id or name); known: G01-01 (鼓楼南街社区第1网格")
    assert len(err.splitlines()) == 1 and err.endswith("(68 in all)")
    assert main(["tasks", ws, "--date", "2026-12-03", "--grid", "G02-01", "--worker", "方刚芳"]) == 2
    assert "not both" in capsys.readouterr().err


def test_a_grid_is_found_by_its_name_or_code(sample_analysis, capsys):
    ws = str(sample_analysis[1])
    assert main(["tasks", ws, "--date", "2026-12-03", "--grid", "G01-01"]) == 0
    by_id = capsys.readouterr().out
    assert main(["tasks", ws, "--date", "2026-12-03", "--grid", "鼓楼南街社区第1网格"]) == 0
    assert capsys.readouterr().out == by_id
    assert main(["tasks", ws, "--date", "2026-12-03", "--grid", "510105001001001"]) == 0  # its grid code
    assert capsys.readouterr().out == by_id
