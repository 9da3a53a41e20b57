"""Schemathesis against a running `sluice dashboard`: requests generated from the OpenAPI
description it serves at /api/openapi.json, every answer checked against that description
(status documented, body of the documented shape, no 5xx)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import schemathesis
from schemathesis.checks import positive_data_acceptance

from producer.dashboard.openapi import spec
from tests.dashboard.process import DashboardProcess
from tests.dashboard.support import TOKEN

# Loaded at collection, when no dashboard runs yet (schemathesis' lazy fixture loader does
# not work with this pytest); `test_the_described_api_is_the_served_one` ties it to the
# document the running dashboard serves.
# /api/events streams for ever (tests/dashboard/test_events.py checks it)
schema = schemathesis.openapi.from_dict(spec()).exclude(path="/api/events")


def test_the_described_api_is_the_served_one(served: DashboardProcess) -> None:
    """The running dashboard serves exactly the description the cases are drawn from."""
    with urllib.request.urlopen(served.url + "/api/openapi.json", timeout=30) as reply:
        assert json.loads(reply.read()) == spec()


@schema.parametrize()
def test_api_answers_as_described(case: schemathesis.Case[Any], served: DashboardProcess) -> None:
    """Whatever is sent, the answer is one the description allows."""
    # A job that fits the schema may still be refused (422), for what no static schema can
    # say: inputs' URI form and length, the pipelines registered, each pipeline's options,
    # the payload limit. The other checks, negative data refused included, all apply.
    enqueue = case.operation.method.upper() == "POST" and case.operation.path == "/api/jobs"
    excluded = [positive_data_acceptance] if enqueue else []
    case.call_and_validate(
        base_url=served.url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        excluded_checks=excluded,
    )
