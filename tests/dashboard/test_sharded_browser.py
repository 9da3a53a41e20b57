"""The pages follow the event stream on a sharded layout (SLUICE_SHARDS=4 on one server), in
a real headless browser: the test of `test_live_events`, run again sharded (apart from
`test_sharded`, as it needs Playwright)."""

from __future__ import annotations

from tests.dashboard import test_live_events
from tests.dashboard.test_live_events import page
from tests.support.sharded import settings, workers

__all__ = ["page", "settings", "workers"]  # the fixtures this test runs with

test_job_page_and_jobs_list_update = test_live_events.test_job_page_and_jobs_list_update_from_events
