"""The site's URLs plus a bare page instrumented by the capture snippet's script tag alone,
for the snippet's browser tests (tests/playground/test_snippet_browser.py).

With `?gleaner=<origin>` the page plays a customer's site on another origin: its policy
allows sending events there. (It serves the snippet itself: the test server's static handler
sends no Access-Control-Allow-Origin, which a cross-origin module needs; WhiteNoise does.)"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from django.urls import path
from django.utils.html import format_html

from config.urls import urlpatterns as site_urlpatterns

ANSWER = "The meeting is on Tuesday at 10:00 in room 4."

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Snippet test</title>
<script type="module" src="{script}" data-key="{key}"{endpoint}
        data-session-id="{session}" data-user-id="user-1"></script></head>
<body>
<article id="answer" data-gleaner-generation="{generation}">
  <p id="text" data-gleaner-text>{answer}</p>
  <textarea id="edit" data-gleaner-edit>{answer}</textarea>
  <button id="save" type="button" data-gleaner-save>Save</button>
  <button id="copy" type="button" data-gleaner-copy>Copy</button>
  <button id="share" type="button" data-gleaner-share>Share</button>
  <button id="regenerate" type="button" data-gleaner-regenerate>Regenerate</button>
</article>
<p id="outside">Not an answer.</p>
</body></html>"""


def snippet_page(request: HttpRequest) -> HttpResponse:
    """The key, session, generation and origins come from the query (escaped like any text)."""
    gleaner = request.GET.get("gleaner", "")
    endpoint = request.GET.get("endpoint")
    response = HttpResponse(
        format_html(
            PAGE,
            script=static("gleaner/capture.js"),
            key=request.GET.get("key", ""),
            endpoint=format_html(' data-endpoint="{}"', endpoint) if endpoint else "",
            session=request.GET.get("session", ""),
            generation=request.GET.get("generation", ""),
            answer=ANSWER,
        )
    )
    if gleaner:
        policy = settings.SECURE_CSP
        response._csp_config = {
            **policy,
            "connect-src": [*policy["connect-src"], gleaner],
        }
    return response


urlpatterns = [*site_urlpatterns, path("snippet-test", snippet_page)]
