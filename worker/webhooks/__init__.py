"""Webhooks: each job's ending POSTed, signed, to its callback URL or the namespace default,
retried with backoff, by whichever worker claims the delivery (docs/webhooks.md)."""
