"""The CLI on a sharded layout (SLUICE_SHARDS=4 on one server): status, results, stats, the
listing, failed, retry, cancel, delete, purge and events, run again by the tests that check
them unsharded, find each job in its shard and read every shard."""

from __future__ import annotations

from tests.cli import test_commands, test_control, test_events, test_listing, test_webhook
from tests.support.sharded import env, keys, settings, workers

__all__ = ["env", "keys", "settings", "workers"]  # the fixtures these tests run with

test_status_json = test_commands.test_status_json_has_the_documented_keys
test_status_table = test_commands.test_status_table_shows_counts_and_marks_the_bottleneck
test_stats_json = test_commands.test_stats_json_counts_ready_and_deferred_jobs
test_results_json = test_commands.test_results_json_lines_in_input_order
test_enqueue_wait_then_results = test_commands.test_enqueue_wait_then_results_through_a_real_worker
test_cancel_a_queued_job = test_control.test_cancel_a_queued_job
test_failed_lists_and_retry_requeues = test_control.test_failed_lists_and_retry_requeues
test_events_follow = test_events.test_events_follow_prints_new_events_as_they_come
test_watch_follows_a_job = test_events.test_watch_follows_a_job_run_by_a_worker
test_jobs_lists_filters_and_searches = test_listing.test_jobs_lists_filters_and_searches
test_delete_removes_an_ended_job = (
    test_listing.test_delete_removes_an_ended_job_and_refuses_a_live_one
)
test_purge_failed = test_listing.test_purge_failed_deletes_the_failed_set
test_callback_url_and_status = (
    test_webhook.test_enqueue_with_a_callback_url_and_status_shows_the_delivery
)
