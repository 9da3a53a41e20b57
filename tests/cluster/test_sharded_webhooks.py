"""Webhooks and the blocking client on a sharded layout (SLUICE_SHARDS=4 on one server): the
tests that check them unsharded, run again. Each shard has its own webhook set and copy of
the namespace's default URL; workers send every shard's due deliveries, once each."""

from __future__ import annotations

import tests.test_sync_client as sync_client
import tests.test_webhooks as webhooks
from tests.support.sharded import settings, workers
from tests.test_webhooks import receiver

__all__ = ["receiver", "settings", "workers"]  # the fixtures these tests run with

test_a_complete_job_is_posted = (
    webhooks.test_a_complete_job_is_posted_signed_and_its_status_says_delivered
)
test_a_failed_job_is_posted = webhooks.test_a_failed_job_is_posted_with_its_error
test_a_cancel_then_a_retry = (
    webhooks.test_a_cancel_is_posted_and_a_retry_posts_the_next_ending_afresh
)
test_retrying_failed_inputs = webhooks.test_retrying_failed_inputs_delivers_the_next_ending_afresh
test_the_namespace_default = webhooks.test_the_namespace_default_gets_jobs_without_a_callback_url
test_two_workers_post_once = webhooks.test_two_workers_post_each_ending_exactly_once
test_an_unreadable_delivery = webhooks.test_an_unreadable_delivery_is_dropped_and_blocks_no_other
test_sync_client_steers_and_lists_jobs = sync_client.test_sync_client_steers_and_lists_jobs
test_purge_failed = sync_client.test_purge_failed_deletes_every_failed_job_and_nothing_else
test_delete_refuses_a_live_job = sync_client.test_delete_refuses_a_live_job
test_jobs_filters = sync_client.test_jobs_filters_by_pipeline_and_search_and_refuses_a_bad_state
