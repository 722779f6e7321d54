"""The whole HTTP API against its own OpenAPI document, as schemathesis sees it: no 5xx, ever.

A live ``gridcover serve`` on a copy of the sample workspace (the admin run applies and restores grid
versions), once without a key and once with the admin key (who may see everything). Every operation of
``/openapi`` gets a bounded number of generated requests (valid and invalid: huge numbers, NaN, odd
strings, missing parameters); a request fails the test on a 5xx, on a status the document does not list,
on a content type it does not list, and on a JSON body that does not match the documented schema.
"""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)
from serving import ServerProcess, keys_file, sample_workspace

from api.access import load_keys
from api.app import create_app
from gridcover.store import open_workspace

#: Generated requests per operation and run (two runs of ~40 operations: about a minute each here).
EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("schema") / "sample"
    shutil.copytree(sample_workspace(), workspace)
    with ServerProcess(workspace, keys=keys_file()) as process:
        yield process


def _document() -> dict:
    """The OpenAPI document the server gives for the sample workspace (built in this process: schemathesis'
    lazy ``from_fixture`` loader does not work under pytest 9, so the operations are known at collection)."""
    return create_app(open_workspace(sample_workspace()), keys=load_keys(keys_file())).openapi()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_server_gives_the_document_tested_here(server):
    assert httpx.get(f"{server.url}/openapi").json() == json.loads(json.dumps(DOCUMENT))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx_or_off_its_schema_without_a_key(case, server):
    case.call_and_validate(base_url=server.url, checks=CHECKS, timeout=30)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx_or_off_its_schema_with_the_admin_key(case, server):
    case.call_and_validate(base_url=server.url, headers={"X-API-Key": "k-admin"}, checks=CHECKS, timeout=30)
