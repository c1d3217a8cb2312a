"""The Celery app; configuration comes from Django settings (CELERY_* keys)."""

from __future__ import annotations

import os
from typing import Any

import kombu
from celery import Celery, signals

from tally.logs import request_id_var
from tally.metrics import metrics_serve

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
    kombu_redis.Channel._connparams = _connparams  # type: ignore[method-assign]
    return True


patch_kombu_redis_close()

app = Celery("tally")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Celery installs its own log handlers unless told not to: Django's LOGGING (JSON lines with
# request ids) formats the worker's records too.
app.conf.worker_hijack_root_logger = False


@signals.task_prerun.connect
def _bind_task_id(task_id: str | None = None, **kwargs: Any) -> None:
    # A task's log lines carry its task id as their request id.
    request_id_var.set(task_id or "")


@signals.task_postrun.connect
def _unbind_task_id(**kwargs: Any) -> None:
    request_id_var.set("")


@signals.worker_init.connect
def _serve_worker_metrics(**kwargs: Any) -> None:
    metrics_serve("TALLY_WORKER_METRICS_PORT")
