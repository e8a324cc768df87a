import logging
import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, worker_init
from celery.worker.consumer import Consumer

from core.gcfreeze import WarmUpFreezer
from core.malloc import keep_freed_memory

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)


class BrokerOutageConsumer(Consumer):
    """The worker's consumer, surviving the loss of a Redis broker with a task in flight.

    Celery 5.7 / kombu 5.7 bug, a race seen in about one Redis kill in four with a prefork
    worker holding a delivered, unacknowledged message (a countdown task, or a task whose
    ack failed): on the connection error the consumer first `collect()`s the connection,
    which clears the transport's `client`, then `close()`s it; closing the default channel
    restores the unacked message, kombu's Redis channel builds a new pool from the cleared
    transport and raises AttributeError ("'NoneType' object has no attribute 'hostname'").
    It is not a connection error, so the consumer does not catch it and the worker exits
    ("Unrecoverable error"). The connection is being discarded anyway: log and go on
    reconnecting. The message is not lost: it is still in Redis's
    unacked set (restored after the visibility timeout) or, if Redis lost its data, the
    beat sweeps find the work in the database. The step skipped by the error cancels
    running tasks only when `worker_cancel_long_running_tasks_on_connection_loss` is on,
    which Gleaner leaves off. Remove this class once Celery closes the connection safely.
    """

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError:
            logger.warning("Ignored an error closing the lost broker connection", exc_info=True)


app = Celery("gleaner")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# A worker process freezes what it made after its 1st and 50th tasks (core.gcfreeze): a
# derivation chunk spent 3.6% of its time in full collections walking import-time objects.
# Tasks run eagerly (the demo, tests) leave the calling process's collector alone.
task_freezer = WarmUpFreezer(at=(1, 50))


@task_postrun.connect
def freeze_after_warm_up(task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    if request is not None and not getattr(request, "is_eager", False):
        task_freezer.tick()


@worker_init.connect
def keep_memory_for_reuse(**_: Any) -> None:
    """The worker keeps the memory it frees (core.malloc), and so do the pool's processes,
    forked from it: the agreement recompute, heavy in arrays, faults in no fresh pages
    once the first run has made its heap."""
    if not keep_freed_memory():
        logger.info("malloc settings not available: freed memory goes back to the system")
