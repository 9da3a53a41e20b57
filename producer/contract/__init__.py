"""The contract every part of Sluice shares: what a job is and how it is written in Redis.

The key layout (`keys`), the models (`models`), the JSON codec and the status hash (`wire`),
the job envelope as a worker reads it (`envelope`), the errors (`errors`), the checks a job
passes (`validation`), the settings every process reads (`settings`), the Lua pieces that
producer and worker scripts share (`scripts`) and the queue figures (`queue_stats`). Both the
producer and the worker import it; it imports nothing else of Sluice.
"""
