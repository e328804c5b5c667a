"""Opening Mongo clients and showing their URIs without secrets."""

from __future__ import annotations

import re

from pymongo import MongoClient

_PASSWORD = re.compile(r"(?P<scheme>mongodb(?:\+srv)?://)(?P<user>[^:@/]+):(?P<password>[^@/]*)@")


def mask_uri(uri: str) -> str:
    """Return `uri` with any password replaced by `***`, for logs and error messages."""
    return _PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", uri)


def connect(uri: str, app_name: str, timeout_ms: int = 5000, socket_timeout_ms: int | None = None) -> MongoClient:
    """Open a client (lazily connecting) with short, explicit timeouts.

    `socket_timeout_ms` bounds how long one operation may wait for the server (None: no limit).
    """
    return MongoClient(
        uri,
        appname=app_name,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=socket_timeout_ms,
        tz_aware=True,
    )


def is_ferretdb(client: MongoClient) -> bool:
    """True when the server is FerretDB (it says so in buildInfo), whose gaps the job works around."""
    return "ferretdbVersion" in client.admin.command("buildInfo")
