"""``python -m benchmarks.command_floor``: the Redis CPU of a tiny job's own commands with no
script around them, beside what the scripts cost: the floor under `script_cost`'s figures on
this machine, and how much of a script's cost is Lua's own work.

It runs `script_cost`'s round once under ``MONITOR`` (a bulk enqueue of CAPTURED jobs, then
claims and endings of `script_cost.BATCH` units a call) and keeps every command each script call
ran. Then, on one server with the append-only file on, rounds of the scripts and rounds of
the replay take turns: the replay sends each captured call's commands for fresh job ids,
in one pipelined round trip per script call (as many round trips as the scripts make), and
every call is priced the same way (``INFO cpu`` around it). What a script costs above its
replay is converting arguments and replies between Redis and Lua, Lua's tables, its
garbage collector: the part a leaner script can take away. What the replay costs, only
fewer commands or fewer fields can.

    python -m benchmarks.command_floor --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import script_cost
from benchmarks.script_cost import THIS, Bench, Costs, run_round, server_cpu_s
from producer.contract.enqueue_scripts import ENQUEUE_MANY
from producer.redis.typed import Redis
from worker.lifecycle.claim_script import CLAIM
from worker.lifecycle.end_script import END

FLOOR = "commands alone"
CAPTURED = 1000  # jobs captured: one bulk enqueue call, as `script_cost` makes them
END_MARK = b"sluice-command-floor-end"

# a MONITOR line: time, [db source], then the command's arguments, each quoted as Redis's
# sdscatrepr writes them (\\ \" \n \r \t \a \b, and \xHH for any other byte not printable)
LINE = re.compile(rb"^\d+\.\d+ \[\d+ ([^\]]*)\] (.*)$", re.S)
ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"', re.S)
ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.S)
ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}
JOB_ID = re.compile(rb"([0-9a-f]{32})")  # `producer.client.bulk.job_ids`' ids
SCRIPTS = {
    hashlib.sha1(source.encode()).hexdigest().encode(): name
    for name, source in (("enqueue", ENQUEUE_MANY), ("claim", CLAIM), ("end", END))
}

Part = bytes | int  # a literal, or the place of a job id among the captured ones
Command = list[list[Part]]


@dataclass
class Call:
    """One script call as captured: which script, and the commands it ran."""

    script: str
    commands: list[Command]


def unescape(quoted: bytes) -> bytes:
    def one(m: re.Match[bytes]) -> bytes:
        code = m[1]
        if len(code) == 3 and code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        return ESCAPES.get(code, code)

    return ESCAPE.sub(one, quoted)


def parse(line: bytes) -> tuple[bytes, list[bytes]] | None:
    """A MONITOR line: its source (``lua`` for a script's command) and its arguments."""
    m = LINE.match(line)
    if m is None:
        return None
    return m[1], [unescape(a) for a in ARG.findall(m[2])]


def template(arg: bytes, places: dict[bytes, int]) -> list[Part]:
    """An argument as literals and the places of the captured job ids in it."""
    parts: list[Part] = []
    for i, piece in enumerate(JOB_ID.split(arg)):
        parts.append(places[piece] if i % 2 and piece in places else piece)
    return parts


def group(lines: Sequence[bytes], ids: Sequence[str]) -> list[Call]:
    """The script calls of MONITOR's lines, each with the commands it ran."""
    places = {job_id.encode(): i for i, job_id in enumerate(ids)}
    calls: list[Call] = []
    for line in lines:
        parsed = parse(line)
        if parsed is None or not parsed[1]:
            continue
        source, args = parsed
        if source != b"lua":
            name = args[0].upper()
            if name in (b"EVALSHA", b"EVAL") and len(args) > 1:
                sha = args[1] if name == b"EVALSHA" else hashlib.sha1(args[1]).hexdigest().encode()
                calls.append(Call(SCRIPTS.get(sha, "other"), []))
            continue
        if calls:
            calls[-1].commands.append([template(a, places) for a in args])
    return [c for c in calls if c.commands and c.script != "other"]


async def capture(b: Bench, jobs: int = CAPTURED) -> tuple[list[Call], list[str]]:
    """The calls of one round of ``jobs`` jobs as MONITOR saw them, and the jobs' ids."""
    watcher = Redis.from_url(b.server.url)
    lines: list[bytes] = []
    monitor = await watcher.monitor().__aenter__()  # MONITOR sent, its OK read
    try:

        async def read() -> None:
            while True:
                line = await monitor.connection.read_response()
                assert isinstance(line, bytes)
                if END_MARK in line:
                    return
                lines.append(line)

        reader = asyncio.create_task(read())
        ids = await run_round(b, jobs, Costs())
        await b.redis.echo(END_MARK)
        await asyncio.wait_for(reader, 60)
    finally:
        await monitor.__aexit__(None, None, None)
        await watcher.aclose()
    return group(lines, ids), ids


def fresh(calls: Sequence[Call], ids: Sequence[bytes]) -> list[tuple[str, list[list[bytes]]]]:
    """The captured calls with job ids of their own."""
    return [
        (
            call.script,
            [
                [b"".join(ids[p] if isinstance(p, int) else p for p in arg) for arg in command]
                for command in call.commands
            ],
        )
        for call in calls
    ]


async def replay(b: Bench, calls: Sequence[Call], captured: int, costs: Costs) -> list[bytes]:
    """The captured commands once more for ``captured`` fresh jobs, a pipeline per captured
    script call, each priced as `script_cost` prices a script call; the jobs' ids."""
    ids = [uuid.uuid4().hex.encode() for _ in range(captured)]
    for script, commands in fresh(calls, ids):
        before = await server_cpu_s(b.redis)
        async with b.redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            await pipe.execute()
        costs.add(script, FLOOR, await server_cpu_s(b.redis) - before - b.reads, 0)
    for script in SCRIPTS.values():
        costs.jobs[script, FLOOR] += captured
    return ids


async def measure(jobs: int, rounds: int, data_dir: Path) -> Costs:
    """Rounds of the scripts and of their commands alone, in turn, on one fresh server."""
    costs = Costs()
    async with script_cost.bench(None, data_dir) as b:
        calls, _ = await capture(b)
        for _ in range(rounds):
            await run_round(b, jobs, costs)
            for _ in range(jobs // CAPTURED):
                await replay(b, calls, CAPTURED, costs)
    return costs


def report(costs: Costs) -> str:
    lines = [script_cost.report(costs)]
    scripts = sum(costs.us_per_job(s, THIS) for s in ("enqueue", "claim", "end"))
    floor = sum(costs.us_per_job(s, FLOOR) for s in ("enqueue", "claim", "end"))
    lines.append(f"{'all three':22}{scripts:26.1f}{floor:26.1f}")
    lines.append(f"the scripts cost {scripts / floor:.2f}x their own commands sent alone")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=9000, help="tiny jobs a round (< 10,000)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    jobs = max(CAPTURED, args.jobs // CAPTURED * CAPTURED)
    with tempfile.TemporaryDirectory() as data_dir:
        costs = asyncio.run(measure(jobs, args.rounds, Path(data_dir)))
    print(report(costs))


if __name__ == "__main__":
    main()
