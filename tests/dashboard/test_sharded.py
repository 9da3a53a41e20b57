"""The dashboard on a sharded layout (SLUICE_SHARDS=4 on one server): its HTTP API, pages,
actions and event stream, run again by the tests that check them unsharded, find every job
in its own shard and every list, count and event over all of them."""

from __future__ import annotations

from tests.dashboard import (
    test_api,
    test_events,
    test_job_ids,
    test_listing,
    test_outputs,
    test_pages,
    test_webhook_api,
)
from tests.support.sharded import settings, workers

__all__ = ["settings", "workers"]  # the fixtures these tests run with

test_enqueue_status_results_stats_workers = test_api.test_enqueue_status_results_stats_workers
test_cancel_retry_delete_and_retry_all = test_api.test_cancel_retry_delete_and_retry_all
test_a_job_of_a_named_queue_over_http = test_api.test_a_job_of_a_named_queue_over_http
test_events_stream_as_sse = test_events.test_events_stream_as_sse_and_resume_from_last_event_id
test_ids_that_are_not_utf8 = test_job_ids.test_ids_that_are_not_utf8_are_listed_everywhere
test_listing_finds_every_kind_of_job = test_listing.test_listing_finds_every_kind_of_job
test_listing_stops_at_its_limit = test_listing.test_listing_stops_at_its_limit_and_says_so
test_blob_route = test_outputs.test_blob_route_serves_images_inline_and_the_rest_as_downloads
test_jobs_page_filters_searches_and_pages = test_pages.test_jobs_page_filters_searches_and_pages
test_actions_need_a_login = test_pages.test_actions_need_a_login_and_the_page_header
test_callback_url_over_http = test_webhook_api.test_callback_url_over_http
