"""The benchmark (`make bench`, `python -m benchmarks`): Sluice against its baselines and peers.

Runs the same workloads, in one run on one machine, through sequential processing, plain
arq (transform inline, and in a process pool), Celery's prefork pool and Sluice (and Sluice
alone on 1, 2 and 4 workers, scaling out), and reports wall time, throughput, speed-ups,
peak RSS, the Redis server's commands and CPU, and efficiency against the physical limit.

Not collected by pytest (``norecursedirs``). Modules that a Celery worker imports
(``transforms``, ``celery_app``, ``celery_enqueue``) need only the standard library, celery,
redis and urllib3: that venv has neither arq nor the worker package.
"""
