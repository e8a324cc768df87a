import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

from core.gcfreeze import WarmUpFreezer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class FreezeAfterWarmUp:
    """The WSGI application, which after the requests numbered `at` (counted per process)
    freezes what the process made so far (core.gcfreeze): a full collection then no
    longer stops every thread of a worker for 70-200 ms."""

    def __init__(self, application: Callable[..., Any], at: Iterable[int] = (1, 200)) -> None:
        self.application = application
        self.freezer = WarmUpFreezer(at)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        response = self.application(environ, start_response)
        self.freezer.tick()
        return response


application = FreezeAfterWarmUp(get_wsgi_application())
