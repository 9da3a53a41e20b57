"""A bug planted in the worker for its stage-death test (SLUICE_PIPELINES=tests.sabotage):
the store stage raises for an input whose URI starts with ``die:``, as a bug in Sluice's own
code would. Every path an input's data takes is guarded, so a stage dies only this way."""

from __future__ import annotations

from worker.stages import store
from worker.stages.items import Item

_encode = store.encode_record


class PlantedBug(BaseException):
    """Not an Exception: nothing around one input catches it."""


def encode_record(item: Item) -> bytes:
    if item.uri.startswith("data:,die"):
        raise PlantedBug(item.uri)
    return _encode(item)


store.encode_record = encode_record
