"""What the dashboard's handlers share, stored on the aiohttp application under typed keys."""

from __future__ import annotations

from aiohttp import web

from producer.client.client import Client
from producer.dashboard.auth import Access
from producer.dashboard.history import History
from producer.dashboard.listing import JobListing
from producer.dashboard.settings import DashboardSettings

SETTINGS = web.AppKey("settings", DashboardSettings)
ACCESS = web.AppKey("access", Access)
CLIENT = web.AppKey("client", Client)
LISTING = web.AppKey("listing", JobListing)
HISTORY = web.AppKey("history", History)


def client(request: web.Request) -> Client:
    return request.app[CLIENT]


def settings(request: web.Request) -> DashboardSettings:
    return request.app[SETTINGS]


def access(request: web.Request) -> Access:
    return request.app[ACCESS]


def listing(request: web.Request) -> JobListing:
    return request.app[LISTING]


def history(request: web.Request) -> History:
    return request.app[HISTORY]
