"""The errors of opening a warehouse connection, shared by every engine's opener.

This module is Django-free.
"""

from __future__ import annotations


class WarehouseUnavailable(ConnectionError):
    """The warehouse cannot be reached (down, missing file, bad credentials)."""


class WarehousePrivileged(WarehouseUnavailable):
    """The warehouse role may read server files or is a superuser; Tally refuses to use it."""
