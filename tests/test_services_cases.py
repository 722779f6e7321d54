"""The case service as both doors call it: what an intake checks, how it reads CSV and JSON, times and as_of."""

from __future__ import annotations

import pandas as pd
import pytest

from gridcover.services.cases import CasesService, CaseViewer, cases_table, csv_table, parse_when, read_intake
from gridcover.store import open_workspace
from gridcover.store.base import CaseError
from lookup_data import write_workspace, xy

HOTLINE = CaseViewer(name="12345")
NOW = pd.Timestamp("2026-11-30T02:00:00Z")  # 10:00 in Beijing, a Monday


@pytest.fixture
def service(tmp_path):
    return CasesService(open_workspace(write_workspace(tmp_path / "ws")))


def one(cid="A", **extra) -> dict:
    lon, lat = xy(0.5, 3.5)
    return {"id": cid, "reported_at": "2026-11-30 09:00", "urgency": "general", "lon": lon, "lat": lat, **extra}


def test_a_time_without_an_offset_is_beijing_time_and_the_deadlines_follow_the_rules(service):
    (c,) = service.intake(cases_table(one()), viewer=HOTLINE, now=NOW)["cases"]
    assert c["reported_at"] == "2026-11-30T01:00:00Z" and c["response_due"] == "2026-11-30T03:00:00Z"
    assert c["status"] == "open" and c["overdue"] is False and c["stored"] is True


def test_chinese_urgencies_and_times_given_with_the_case_are_recorded_with_the_sender_as_author(service):
    (c,) = service.intake(cases_table(one(urgency="紧急", accepted_at="2026-11-30 09:05")), viewer=HOTLINE,
                          now=NOW)["cases"]
    assert c["urgency"] == "urgent" and c["accepted_by"] == "12345" and c["response_min"] == 5.0


def test_a_case_reported_in_the_future_or_accepted_before_it_was_reported_is_refused(service):
    with pytest.raises(CaseError) as err:
        service.intake(cases_table([one("A", reported_at="2026-12-30 09:00"),
                                    one("B", accepted_at="2026-11-30 08:00")]), viewer=HOTLINE, now=NOW)
    assert [(e["item"], e["problem"]) for e in err.value.rows] == [(0, "time_in_future"), (1, "time_before_reported")]
    assert service.store.cases().count() == 0


def test_csv_in_gb18030_and_json_in_three_shapes_read_alike():
    text = "id,reported_at,urgency,address\nA,2026-11-30 09:00,一般,红星路二段12号锦华苑3栋\n"
    table = read_intake(text.encode("gb18030"), content_type="text/csv")
    assert (table.unit, table.first, table.frame.loc[0, "address"]) == ("row", 2, "红星路二段12号锦华苑3栋")
    for body in (b'{"id": "A"}', b'[{"id": "A"}]', b'{"crs": "gcj02", "items": [{"id": "A"}]}'):
        assert read_intake(body, content_type="application/json").frame["id"].tolist() == ["A"]
    assert read_intake(b'{"crs": "gcj02", "items": [{"id": "A"}]}', content_type=None).crs == "gcj02"
    with pytest.raises(CaseError, match="not JSON"):
        read_intake(b'{"id": ', content_type="application/json")
    with pytest.raises(CaseError, match="no case"):
        csv_table(b"id,reported_at\n")


def test_as_of_is_a_date_or_a_time():
    assert parse_when("2026-11-30", field_name="as_of", zone="Asia/Shanghai") == pd.Timestamp("2026-11-30T15:59:59Z")
    assert parse_when("2026-11-30T09:00:00+08:00", field_name="as_of", zone="Asia/Shanghai") == \
        pd.Timestamp("2026-11-30T01:00:00Z")
    with pytest.raises(CaseError) as err:
        parse_when("soon", field_name="as_of", zone="Asia/Shanghai")
    assert err.value.problem == "invalid_time"


def test_listing_at_an_earlier_time_sees_the_case_open_and_later_closed(service):
    service.intake(cases_table(one()), viewer=HOTLINE, now=NOW)
    service.close("A", viewer=HOTLINE, at="2026-11-30 09:30", now=NOW)
    earlier = service.list_cases(viewer=HOTLINE, as_of="2026-11-30T09:10:00+08:00", status="open", now=NOW)
    assert [c["id"] for c in earlier["cases"]] == ["A"] and earlier["as_of"] == "2026-11-30T01:10:00Z"
    assert service.list_cases(viewer=HOTLINE, status="closed", now=NOW)["numberMatched"] == 1
    with pytest.raises(CaseError, match="in the future"):
        service.intake(cases_table(one("B")), viewer=HOTLINE, now=NOW)
        service.accept("B", viewer=HOTLINE, at="2026-12-30 09:00", now=NOW)
