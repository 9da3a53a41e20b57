"""The dashboard and the client follow the embedded server when it restarts on another port."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp

from producer import Client, ClientSettings, JobState
from tests.dashboard.conftest import StartDashboard
from tests.dashboard.support import call, eventually
from worker.process.embedded import EmbeddedServer


async def test_dashboard_and_client_follow_a_restarted_server(
    start_dashboard: StartDashboard, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """After the server restarts on a new port (the old one taken), both answer again, with
    the data the server kept; while it is down the error names one address."""
    data_dir = tmp_path / "embedded"
    server = EmbeddedServer(data_dir)
    old_url = server.start()
    settings = ClientSettings(namespace="moving", data_dir=data_dir, _env_file=None)
    dashboard = await start_dashboard(redis_url=None, data_dir=data_dir, namespace="moving")
    async with Client(settings) as client:
        job_id = await client.enqueue("text-stats", ["data:,kept"])
        assert (await call(session, "GET", dashboard.at("/api/stats"))).body["ready"] == 1
        server.stop()
        down = await call(session, "GET", dashboard.at("/api/stats"))
        assert down.status == 503
        assert set(_ports(down.body["message"])) == {old_url.rpartition(":")[2]}
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", int(old_url.rpartition(":")[2])))
            squatter.listen()
            moved = EmbeddedServer(data_dir)
            try:
                assert moved.start() != old_url

                async def answers() -> bool:
                    reply = await call(session, "GET", dashboard.at("/api/stats"))
                    return reply.status == 200 and reply.body["ready"] == 1

                await eventually(answers, what="the dashboard answering from the new server")
                assert (await client.status(job_id)).state == JobState.QUEUED
            finally:
                moved.stop()


def _ports(text: str) -> list[str]:
    """Every port named as ``127.0.0.1:PORT`` in ``text``."""
    parts = text.split("127.0.0.1:")[1:]
    return ["".join(c for c in part[:6] if c.isdigit()) for part in parts]
