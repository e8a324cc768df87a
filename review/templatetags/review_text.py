"""Turning stored text into HTML for the review pages.

`markdown_sanitised` is the one filter here whose output is marked safe: Markdown may carry
raw HTML, so its output goes through nh3 (an allow-list sanitiser) first. Everything else a
user or a model wrote is plain text and left to autoescaping.
"""

from __future__ import annotations

from typing import Any

import markdown
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Links may go to the web or to a mail address: no javascript:, data: or vbscript: URLs.
URL_SCHEMES = {"http", "https", "mailto"}


@register.filter
def markdown_sanitised(text: str) -> SafeString:
    html = markdown.markdown(text or "", extensions=["sane_lists"], output_format="html")
    return mark_safe(nh3.clean(html, url_schemes=URL_SCHEMES))  # noqa: S308 (sanitised)


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
