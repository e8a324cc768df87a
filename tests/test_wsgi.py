"""The WSGI entry point: what gunicorn serves."""

from __future__ import annotations

import gc
import weakref

import pytest

from config.wsgi import FreezeAfterWarmUp, application


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite runs with the collector as it found it


def test_objects_alive_after_the_warm_up_requests_are_frozen_once_each(unfrozen):
    served = []

    def app(environ, start_response):
        served.append([environ["PATH_INFO"]])  # a new object the collector tracks, kept alive
        return [b"ok"]

    wrapped = FreezeAfterWarmUp(app, at=(1, 3))
    counts = []
    for n in range(4):
        assert wrapped({"PATH_INFO": f"/{n}"}, None) == [b"ok"]
        counts.append(gc.get_freeze_count())

    assert served == [["/0"], ["/1"], ["/2"], ["/3"]]
    # Frozen after the first request, not after the second, again after the third (what
    # the second and third left alive joins the frozen), not after the fourth.
    assert counts[0] > 0
    assert counts[1] == counts[0]
    assert counts[2] > counts[1]
    assert counts[3] == counts[2]


def test_garbage_is_collected_before_it_would_be_frozen(unfrozen):
    class Cycle:
        pass

    refs = []

    def app(environ, start_response):
        cycle = Cycle()
        cycle.me = cycle  # unreachable after the call: only the collector frees it
        refs.append(weakref.ref(cycle))
        return [b"ok"]

    gc.disable()  # so that only the wrapper's own collection can free the cycle
    try:
        FreezeAfterWarmUp(app, at=(1,))({}, None)
        # Frozen instead of collected, it would live as long as the process.
        assert refs[0]() is None
    finally:
        gc.enable()


def test_gunicorn_serves_the_django_application_through_the_warm_up_freeze():
    assert isinstance(application, FreezeAfterWarmUp)
    assert application.at == frozenset({1, 200})
    assert type(application.application).__name__ == "WSGIHandler"
