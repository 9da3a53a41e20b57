"""The clients: the async `Client` (`client`) and the blocking `SyncClient` (`sync_client`),
with what they are made of: enqueueing one job or many (`enqueue`, `bulk`, `landed`), reading
statuses and listings (`inspect`, `listing`, `stored_ids`), removal (`removal`), the options
check at enqueue (`options`), and the producer's span (`tracing`). The worker never imports it.
"""
