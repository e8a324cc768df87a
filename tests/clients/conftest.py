"""Fixtures of the client tests: a real Gleaner in a subprocess on the test database
(`gleaner_server`), a proxy to it that loses answers, and the alias through which a test
reads what the server stored (`server_db`)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator

import pytest
from django.db import connection, connections
from django.db.utils import load_backend

from tests.clients.servers import AnswerLosingProxy, GleanerServer
from tests.worker import free_port

SERVER_DB = "gleaner_server"  # on SQLite, the alias of the server's copy of the test database


@pytest.fixture
def server_db(transactional_db, project, api_key, tmp_path) -> Iterator[str]:
    """The alias through which the test reads what the server stores.

    PostgreSQL: the test database itself (the test is transactional, so the server sees
    its rows and it sees the server's). SQLite: the test database lives in this process's
    memory, out of another process's reach, so the server gets a file copy of it, made
    after the project and its key exist, under its own alias.
    """
    if connection.vendor != "sqlite":
        yield "default"
        return
    path = tmp_path / "server.sqlite3"
    connection.ensure_connection()
    copy = sqlite3.connect(path)
    try:
        connection.connection.backup(copy)
    finally:
        copy.close()
    # A connection made here, not a configured alias: Django's test case lets a test use
    # such a connection, where it forbids configured databases the test did not ask for.
    backend = load_backend(connection.settings_dict["ENGINE"])
    connections[SERVER_DB] = backend.DatabaseWrapper(
        {**connection.settings_dict, "NAME": str(path)}, SERVER_DB
    )
    yield SERVER_DB
    connections[SERVER_DB].close()
    del connections[SERVER_DB]


@pytest.fixture
def gleaner_server(project, api_key, server_db, tmp_path) -> Iterator[GleanerServer]:
    db = connections[server_db].settings_dict
    if connection.vendor == "sqlite":
        database_url = f"sqlite:///{db['NAME']}"
    else:
        database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        # No broker: the server derives each session as its events arrive (in-process).
        "CELERY_BROKER_URL": "",
        "DB_POOL_MAX": "0",
    }
    server = GleanerServer(port=free_port(), env=env, log=tmp_path / "gunicorn.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def losing_proxy(gleaner_server) -> Iterator[AnswerLosingProxy]:
    proxy = AnswerLosingProxy(upstream=gleaner_server.url)
    proxy.start()
    yield proxy
    proxy.stop()
