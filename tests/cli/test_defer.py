"""`sluice enqueue --defer` refuses what no queue score can hold, as a usage error."""

from __future__ import annotations

import pytest

from producer.contract.keys import Keys
from producer.redis.typed import SyncRedis
from tests.support.cli import sluice


@pytest.mark.parametrize("defer", ["1e400", "inf", "nan", "1e308", "-1"])
def test_defer_out_of_range_is_a_usage_error(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, defer: str
) -> None:
    """Exit 2 with a message naming the limit, no traceback, nothing enqueued."""
    done = sluice(env, "enqueue", "text-stats", "data:,x", "--defer", defer)
    assert done.exit_code == 2
    assert "MAX_DEFER_S" in done.stderr and "Traceback" not in done.stderr
    assert rdb.zcard(keys.queue) == 0
