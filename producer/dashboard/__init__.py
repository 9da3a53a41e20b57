"""The web dashboard and HTTP API served by `sluice dashboard` (the ``dashboard`` extra).

A producer-side tool: every read and action goes through `producer.Client`; it never imports
``worker/``. Only the `sluice dashboard` command imports its server (`app`), so the producer and
its CLI load no web framework; the CLI reads its settings (`settings`: pydantic only).
"""
