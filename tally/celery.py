"""The Celery app; configuration comes from Django settings (CELERY_* keys)."""

from __future__ import annotations

import os
from typing import Any

import kombu
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tally.settings")

# kombu releases whose Redis channel, closed after its transport was detached, raises
# AttributeError ("'NoneType' object has no attribute 'hostname'") instead of a connection
# error: the worker's consumer treats it as unrecoverable and the worker exits once its
# running task ends (seen with a prefork worker when Redis restarts under a task).
KOMBU_DETACHED_CLOSE_BUG = ("5.7.0",)


def patch_kombu_redis_close() -> bool:
    """Makes a detached Redis channel raise redis' ConnectionError (which the consumer's
    reconnect loop ignores and recovers from) where kombu raises AttributeError; returns
    whether the installed kombu needed it. The unacknowledged messages it could not restore
    stay in Redis' unacked index, and the compute reaper covers anything Redis loses."""
    if kombu.__version__ not in KOMBU_DETACHED_CLOSE_BUG:
        return False
    import redis
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.Channel._connparams
    if getattr(original, "tally_patched", False):
        return True

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.exceptions.ConnectionError("the broker connection is already closed")
        return original(self, asynchronous=asynchronous)

    _connparams.tally_patched = True  # type: ignore[attr-defined]
    kombu_redis.Channel._connparams = _connparams
    return True


patch_kombu_redis_close()

app = Celery("tally")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
