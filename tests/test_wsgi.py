"""Warm-up freezing of the garbage collector (core.gcfreeze) in what gunicorn serves and in
Celery's worker processes."""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace

import pytest

from config import celery
from config.wsgi import FreezeAfterWarmUp, application
from core.gcfreeze import WarmUpFreezer


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite runs with the collector as it found it


def frozen(value: object) -> bool:
    """Whether the collector tracks `value` but in none of its generations: frozen. (The
    count of frozen objects would not do: other threads' frozen objects die any time.)"""
    return gc.is_tracked(value) and not any(o is value for o in gc.get_objects())


def test_objects_alive_after_the_warm_up_requests_are_frozen_once_each(unfrozen):
    kept = []

    def app(environ, start_response):
        kept.append([environ["PATH_INFO"]])  # a new object the collector tracks, kept alive
        return [b"ok"]

    wrapped = FreezeAfterWarmUp(app, at=(1, 3))
    seen = []
    for n in range(4):
        assert wrapped({"PATH_INFO": f"/{n}"}, None) == [b"ok"]
        seen.append([frozen(value) for value in kept])

    assert kept == [["/0"], ["/1"], ["/2"], ["/3"]]
    # Frozen after the first request, not after the second, again after the third (what
    # the second and third left alive), not after the fourth.
    assert seen == [[True], [True, False], [True, True, True], [True, True, True, False]]


def test_garbage_is_collected_before_it_would_be_frozen(unfrozen):
    class Cycle:
        pass

    refs = []

    def make_garbage():
        cycle = Cycle()
        cycle.me = cycle  # unreachable after the call: only the collector frees it
        refs.append(weakref.ref(cycle))

    gc.disable()  # so that only the freezer's own collection can free the cycle
    try:
        make_garbage()
        assert refs[0]() is not None
        assert WarmUpFreezer(at=(1,)).tick()
        # Frozen instead of collected, it would live as long as the process.
        assert refs[0]() is None
    finally:
        gc.enable()


def test_gunicorn_serves_the_django_application_through_the_warm_up_freeze():
    assert isinstance(application, FreezeAfterWarmUp)
    assert application.freezer.at == frozenset({1, 200})
    assert type(application.application).__name__ == "WSGIHandler"


def test_celery_worker_tasks_count_towards_the_freeze_and_eager_ones_do_not(unfrozen, monkeypatch):
    freezer = WarmUpFreezer(at=(2,))
    monkeypatch.setattr(celery, "task_freezer", freezer)
    worker_task = SimpleNamespace(request=SimpleNamespace(is_eager=False))
    eager_task = SimpleNamespace(request=SimpleNamespace(is_eager=True))

    alive = [object()]  # a tracked object that outlives the calls
    celery.freeze_after_warm_up(task=eager_task)
    celery.freeze_after_warm_up(task=eager_task)
    assert not frozen(alive)  # the caller's process is left alone
    celery.freeze_after_warm_up(task=worker_task)
    assert not frozen(alive)  # the first worker task: not one of `at`
    celery.freeze_after_warm_up(task=worker_task)
    assert frozen(alive)
    assert celery.task_freezer is freezer
    monkeypatch.undo()
    assert celery.task_freezer.at == frozenset({1, 50})
