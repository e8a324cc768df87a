import gc
import itertools
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class FreezeAfterWarmUp:
    """The WSGI application, which after the requests numbered `at` (counted per process)
    collects and then freezes the garbage collector's objects: what Django, the apps and
    their libraries made at import and on the first requests (~150k objects) lives as long
    as the process, and a full collection that walks it stops every thread of a worker for
    70-200 ms (bench/claims.py saw ten such pauses in a run: most of the claims' p95).
    Frozen, a full collection walks only what later requests leave, in a few ms. The
    collection before each freeze (one such pause per process, twice) frees what is
    garbage already, so only live objects are frozen."""

    def __init__(self, application: Callable[..., Any], at: Iterable[int] = (1, 200)) -> None:
        self.application = application
        self.at = frozenset(at)
        self.served = itertools.count(1)  # next() is atomic under the GIL: threads share it

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        response = self.application(environ, start_response)
        if next(self.served) in self.at:
            gc.collect()
            gc.freeze()
        return response


application = FreezeAfterWarmUp(get_wsgi_application())
