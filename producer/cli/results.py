"""`sluice results`: a job's records as a table or JSON lines, or its blobs written to files.

Records are read and printed a page at a time, never collected, so a job of a million
inputs prints in constant memory.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from producer.cli.render import results_table, shown
from producer.cli.runner import Console
from producer.client.client import Client
from producer.contract.errors import JobNotFound
from producer.contract.models import ItemResult, JobState
from producer.contract.wire import dumps

PAGE = 500
BLOB_PAGE = 100  # blobs read per round trip (thumbnails: a few MB at most)


async def records(client: Client, job_id: str, *, failed_only: bool) -> AsyncIterator[ItemResult]:
    """The job's stored records in input order; JobNotFound if there is no such job."""
    if (await client.status(job_id)).state == JobState.NOT_FOUND:
        raise JobNotFound(f"no job {job_id}")
    async for record in client.results(job_id):
        if not (failed_only and record.ok):
            yield record


async def print_json_lines(client: Client, job_id: str, *, failed_only: bool) -> int:
    """One JSON object per record on stdout; the number printed."""
    count, lines = 0, []
    async for record in records(client, job_id, failed_only=failed_only):
        lines.append(dumps(record.as_line()))
        count += 1
        if len(lines) >= PAGE:
            _write_lines(lines)
    _write_lines(lines)
    return count


def _write_lines(lines: list[bytes]) -> None:
    if lines:
        sys.stdout.write(b"\n".join(lines).decode() + "\n")
        sys.stdout.flush()
        lines.clear()


async def print_table(client: Client, job_id: str, console: Console, *, failed_only: bool) -> int:
    """The records as table rows, a page at a time under one header; the number printed."""
    count, page = 0, []
    async for record in records(client, job_id, failed_only=failed_only):
        page.append(record)
        if len(page) >= PAGE:
            console.print(results_table(page, console.width, header=count == 0))
            count += len(page)
            page = []
    if page:
        console.print(results_table(page, console.width, header=count == 0))
        count += len(page)
    return count


async def write_blobs(client: Client, job_id: str, directory: Path, *, failed_only: bool) -> int:
    """Write each stored blob to ``directory`` as ``{index:06d}.{ext}``; the number written.

    Blobs are read BLOB_PAGE at a time, one round trip each."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    written = 0
    page: list[ItemResult] = []

    async def write_page() -> None:
        nonlocal written
        found = await client.blobs(job_id, [record.index for record in page])
        for record in page:
            data = found.get(record.index)
            if data is not None:  # else the record names a blob never stored (or expired)
                await asyncio.to_thread((directory / record.blob_name()).write_bytes, data)
                written += 1
        page.clear()

    async for record in records(client, job_id, failed_only=failed_only):
        if record.blob:
            page.append(record)
            if len(page) >= BLOB_PAGE:
                await write_page()
    await write_page()
    return written


async def show_results(
    client: Client, job_id: str, *, as_json: bool, output: Path | None, failed_only: bool
) -> None:
    """What `sluice results` prints: blob files written, JSON lines, or a table."""
    if output is not None:
        written = await write_blobs(client, job_id, output, failed_only=failed_only)
        if as_json:
            sys.stdout.write(dumps({"written": written, "output": str(output)}).decode() + "\n")
        else:
            Console().print(shown(f"wrote {written} files to {output}"))
    elif as_json:
        await print_json_lines(client, job_id, failed_only=failed_only)
    else:
        console = Console()
        if not await print_table(client, job_id, console, failed_only=failed_only):
            console.print("no stored records" + (" of failed inputs" if failed_only else ""))
