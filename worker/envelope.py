"""arq's job deserializer for Sluice: JSON only, and never an exception.

A job written raw that is not valid JSON, or lacks arq's fields, still reaches the Sluice
job function carrying the reason, so the job is marked failed with a clear error in its
status (arq would only log a deserialization error).
"""

from __future__ import annotations

from typing import Any

from producer.keys import JOB_FUNCTION
from producer.wire import loads

MALFORMED = "__malformed__"


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
    if raw[:2] in PICKLE_PROTOCOLS:
        return _malformed(PICKLED)
    try:
        data = loads(raw)
    except ValueError as exc:
        return _malformed(f"job payload is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _malformed(f"job payload must be a JSON object, got {type(data).__name__}")
    if "t" in data and "et" in data and "s" in data:
        return data  # an arq result envelope, read back by arq itself
    kwargs = data.get("k")
    if not isinstance(kwargs, dict):
        return _malformed("job payload needs an object 'k' with the job (pipeline, inputs)")
    return {
        "f": data.get("f", JOB_FUNCTION),
        "a": data.get("a") if isinstance(data.get("a"), list) else [],
        "k": kwargs,
        "t": data.get("t") if isinstance(data.get("t"), int) else 1,
        "et": data.get("et") if isinstance(data.get("et"), int) else 0,
    }


def _malformed(reason: str) -> dict[str, Any]:
    return {"f": JOB_FUNCTION, "a": [], "k": {MALFORMED: reason}, "t": 1, "et": 0}
