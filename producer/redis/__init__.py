"""Talking to Redis: finding the server (`connection`, `sentinel`), pooled connections that
leave a server which stopped being the primary (`pool`), writes that survive a failover
(`failover`), the one way to run a Lua script (`scripts`), pauses between tries (`backoff`),
and redis-py's clients typed as they run (`typed`). Shared by the producer and the worker; it
imports only `producer.contract`.
"""
