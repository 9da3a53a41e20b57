"""Reading a job envelope (``arq:job:{id}``), the one way: JSON only, and never an exception.

The worker reads jobs with it (it is arq's job deserializer too), and the client reads a job
written with raw commands that no worker has claimed yet. A job written raw that is not
valid JSON, or lacks arq's fields, still reaches the worker carrying the reason, so the job
is marked failed with a clear error in its status (arq would only log a deserialization
error). The envelope is written by `producer.contract.wire.encode_job`.
"""

from __future__ import annotations

from typing import Any

from producer.contract.keys import JOB_FUNCTION
from producer.contract.wire import loads

MALFORMED = "__malformed__"
_MAX_COUNT = 2**63 - 1  # a try count or a time in ms that JSON writers and Redis all take


# What a pickle starts with from protocol 2 on: PROTO, then the protocol number. arq pickles
# jobs unless told otherwise, so this is what its client sends with its defaults.
PICKLE_PROTOCOLS = {bytes([0x80, protocol]) for protocol in range(2, 6)}
PICKLED = (
    "job payload is a Python pickle (arq's default job_serializer); Sluice reads JSON only: "
    "enqueue with arq's create_pool(..., job_serializer=lambda d: json.dumps(d).encode(), "
    "job_deserializer=json.loads), and _queue_name='sluice:queue' (SLUICE_NAMESPACE + ':queue'); "
    'see README, "Enqueueing with arq\'s own client"'
)


def load_envelope(raw: bytes) -> dict[str, Any]:
    """The envelope's fields as the worker reads them, each of the type it expects: ``f`` a
    str, ``a`` a list, ``k`` a dict, ``t`` and ``et`` ints (1 and 0 when missing or out of
    range). Whatever ``raw`` holds: a job that cannot be read carries the reason in ``k``."""
    if raw[:2] in PICKLE_PROTOCOLS:
        return _malformed(PICKLED)
    try:
        data = loads(raw)
    except ValueError as exc:
        return _malformed(f"job payload is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _malformed(f"job payload must be a JSON object, got {type(data).__name__}")
    kwargs = data.get("k")
    if not isinstance(kwargs, dict):
        return _malformed("job payload needs an object 'k' with the job (pipeline, inputs)")
    function = data.get("f", JOB_FUNCTION)
    if not isinstance(function, str):
        return _malformed(f"job payload's 'f' must be a string, got {type(function).__name__}")
    envelope = {
        "f": function,
        "a": data["a"] if isinstance(data.get("a"), list) else [],
        "k": kwargs,
        "t": _count(data.get("t"), 1),
        "et": _count(data.get("et"), 0),
    }
    if "s" in data:  # an arq result envelope, read back by arq itself: its other fields too
        return {**data, **envelope}
    return envelope


def _count(value: object, default: int) -> int:
    return value if type(value) is int and 0 <= value <= _MAX_COUNT else default


def _malformed(reason: str) -> dict[str, Any]:
    return {"f": JOB_FUNCTION, "a": [], "k": {MALFORMED: reason}, "t": 1, "et": 0}
