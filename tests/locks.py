"""A lock another process holds: taken in a connection of its own, and let go as that process dies."""

import psycopg
from django.db import connection


def held_elsewhere(space: int, key: str) -> psycopg.Connection:
    """Another connection holding the advisory lock ``(space, hashtext(key))``: a live process."""
    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    other.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [space, key])
    return other


def dies(other: psycopg.Connection) -> None:
    """The other process dies, its locks with it: waited for until its server process is gone (a
    closed client connection ends its backend some moments later, not at once)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [other.info.backend_pid])
        assert cursor.fetchone() == (True,)
    other.close()
