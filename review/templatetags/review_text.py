"""Turning stored text into HTML for the review pages.

`markdown_sanitised` (a lead's guidelines) and `model_markdown` (prompts and model output)
are the filters here whose output is marked safe: Markdown may carry raw HTML, so their
output goes through nh3 (an allow-list sanitiser) first. Everything else a user or a model
wrote is plain text and left to autoescaping.
"""

from __future__ import annotations

import re
from typing import Any

import nh3
from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

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


# A lead's guidelines may carry HTML (kept as far as nh3 allows). markdown-it-py, as for
# model output below: Python-Markdown took minutes on some texts (20,000 "[" in a row).
_guidelines_parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


@register.filter
def markdown_sanitised(text: str) -> SafeString:
    html = _guidelines_parser.render((text or "").encode("utf-8", "replace").decode("utf-8"))
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


# Model output and prompts -----------------------------------------------------------------
#
# Stricter than guidelines: the text comes from a model or an end user, not a lead. Parsed by
# markdown-it-py (CommonMark, in time about linear in the text: Python-Markdown took minutes
# on 20,000 "[" in a row) with raw HTML off, so HTML is shown as text, never passed
# through; images are not drawn (`![alt](src)` becomes a link to the address, never
# fetched); links go only to http(s) or mail addresses and carry rel="nofollow noopener
# noreferrer". nh3 then keeps only the tags below, whatever the parser made.

MODEL_LINK_SCHEMES = {"http", "https", "mailto"}
MODEL_TAGS = {
    "p", "br", "hr", "strong", "em", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
MODEL_ATTRIBUTES = {"a": {"href"}, "ol": {"start"}}
# A bound on the work per text on a hot page (the parser's worst cases take about 20 ms per
# 1,000 characters); longer texts are shown as plain text.
MODEL_MARKDOWN_MAX_CHARS = 20_000

_model_parser = (
    MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
    .enable(["table", "strikethrough"])
    .disable("image")
)


def _model_link(element: str, attribute: str, value: str) -> str | None:
    if element == "a" and attribute == "href":
        scheme = _url_as_browsed(value).split(":", 1)[0].lower() if ":" in value else ""
        return value if scheme in MODEL_LINK_SCHEMES else None  # relative links go too
    return value


@register.filter
def model_markdown(text: Any) -> SafeString:
    """A prompt's or a model's text as sanitised HTML (see above). Non-text content (a
    message's content parts) is read as `message_text` does."""
    # A lone surrogate (which no page can carry) becomes "?" rather than an error.
    text = message_text(text).encode("utf-8", "replace").decode("utf-8")
    if len(text) > MODEL_MARKDOWN_MAX_CHARS:
        return mark_safe(f'<p class="plain">{escape(text)}</p>')  # noqa: S308 (escaped)
    clean = nh3.clean(
        _model_parser.render(text),
        tags=MODEL_TAGS,
        clean_content_tags={"script", "style"},
        attributes=MODEL_ATTRIBUTES,
        attribute_filter=_model_link,
        url_schemes=MODEL_LINK_SCHEMES,
        link_rel="nofollow noopener noreferrer",
    )
    return mark_safe(clean)  # noqa: S308 (sanitised)


OPTIONAL_SUFFIX = re.compile(r"\s*\(optional\)\s*$", re.IGNORECASE)


@register.filter
def question_prompt(question: Any) -> str:
    """A question's prompt without a trailing "(optional)": the page says so itself for an
    optional question (queues created before the default prompts stopped carrying it)."""
    prompt = str(getattr(question, "prompt", "") or "")
    if getattr(question, "required", True):
        return prompt
    return OPTIONAL_SUFFIX.sub("", prompt) or prompt


@register.filter
def scale_anchor(question: Any, value: Any) -> str:
    """The word a rating question's `anchors` give to a point of its scale, or ""."""
    anchors = getattr(question, "anchors", None)
    if not isinstance(anchors, dict):
        return ""
    anchor = anchors.get(str(value), "")
    return anchor if isinstance(anchor, str) else ""
