"""Opening Mongo clients and showing their URIs without secrets."""

from __future__ import annotations

import re

from pymongo import MongoClient

_PASSWORD = re.compile(r"(?P<scheme>mongodb(?:\+srv)?://)(?P<user>[^:@/]+):(?P<password>[^@/]*)@")


def mask_uri(uri: str) -> str:
    """Return `uri` with any password replaced by `***`, for logs and error messages."""
    return _PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", uri)


def connect(uri: str, app_name: str, timeout_ms: int = 5000) -> MongoClient:
    """Open a client (lazily connecting) with short, explicit timeouts."""
    return MongoClient(
        uri,
        appname=app_name,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
    )
