"""Turning stored text into HTML for the review pages.

`markdown_sanitised` is the one filter here whose output is marked safe: Markdown may carry
raw HTML, so its output goes through nh3 (an allow-list sanitiser) first. Everything else a
user or a model wrote is plain text and left to autoescaping.
"""

from __future__ import annotations

import re
from typing import Any

import markdown
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Links may go to the web or to a mail address: no javascript:, data: or vbscript: URLs.
LINK_SCHEMES = {"http", "https", "mailto"}
# Images are fetched by every annotator's browser as soon as the page shows: only this
# site's own paths ("/static/...") and inline raster images, never another host (a
# tracking pixel would learn who works when).
INLINE_IMAGE = re.compile(r"data:image/(?:png|gif|jpeg|webp)[;,]", re.IGNORECASE)
# Browsers drop tabs and newlines anywhere in a URL, and spaces and control characters
# around it; they read "\\" as "/".
URL_IGNORED = re.compile(r"[\t\n\r]")
URL_TRIMMED = "".join(map(chr, range(0x21)))


def _url_as_browsed(url: str) -> str:
    return URL_IGNORED.sub("", url).strip(URL_TRIMMED).replace("\\", "/")


def same_site_image(src: str) -> bool:
    """Is `src` a path on this site (not "//host", not "/\\host") or an inline raster image?"""
    url = _url_as_browsed(src)
    if INLINE_IMAGE.match(url):
        return True
    return url.startswith("/") and not url.startswith("//")


def _filter_attribute(element: str, attribute: str, value: str) -> str | None:
    if attribute == "src":
        return value if element == "img" and same_site_image(value) else None
    if attribute == "href" and _url_as_browsed(value).lower().startswith("data:"):
        return None  # data: is allowed as a scheme for images only
    return value


@register.filter
def markdown_sanitised(text: str) -> SafeString:
    html = markdown.markdown(text or "", extensions=["sane_lists"], output_format="html")
    clean = nh3.clean(html, url_schemes=LINK_SCHEMES | {"data"}, attribute_filter=_filter_attribute)
    return mark_safe(clean)  # noqa: S308 (sanitised)


@register.filter
def message_text(content: Any) -> str:
    """A chat message's content as plain text: a string, or the text parts of a list of
    content parts (`[{"type": "text", "text": ...}]`)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return "\n".join(p for p in parts if isinstance(p, str) and p)
    return "" if content is None else str(content)
