"""The worker process: its entry point (`start`, `main`), the arq worker it runs and how it is
assembled (`arq_worker`, `app`), the HTTP server for metrics and probes (`health_server`),
the embedded server (`embedded`), `--check` (`check`) and the start-up warnings
(`persistence`). The top layer of the worker: it imports every other part, none imports it.
"""
