"""The shortcuts that keep classify_edit fast give the answers of the plain definitions
(feedback/edits.py): punctuation by regex, per-line tokens from a cache."""

from __future__ import annotations

import sys

from feedback import edits
from feedback.edits import _is_punct, _line, classify_edit


def test_punctuation_by_regex_is_no_letter_digit_or_underscore_for_every_character():
    differ = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if _is_punct(chr(code)) != (not (chr(code).isalnum() or chr(code) == "_"))
    ]
    assert differ == []
    assert _is_punct("") and _is_punct("?!…") and not _is_punct("a.") and not _is_punct("._")


FENCED = "Run it:\n```\nprint(total)\n```\nprint(total)\n"
IN_FENCE = FENCED.replace("```\nprint(total)\n```", "```\nprint(total, end='')\n```")


def test_the_same_line_inside_and_after_a_fence_classifies_by_its_place_in_any_order():
    """The cache holds what a line says alone; whether it sits in a fenced block is decided
    per text, so a cached line still classifies by its place."""
    after = FENCED[: FENCED.rindex("print(total)")] + "print(total, end='')\n"
    edits._line.cache_clear()  # noqa: SLF001
    first = (classify_edit(FENCED, IN_FENCE), classify_edit(FENCED, after))
    assert _line.cache_info().hits > 0
    edits._line.cache_clear()  # noqa: SLF001
    second = (classify_edit(FENCED, after), classify_edit(FENCED, IN_FENCE))[::-1]
    assert first == second
    assert first[0].content == "code" and "code_token" in first[0].changes


def test_answers_do_not_depend_on_what_the_cache_holds():
    pairs = [
        ("The meeting is on May 4 at 10:00.", "The meeting is on May 5 at 10:00."),
        ("It does not work.\nTry again.", "It works.\nTry again."),
        ("x = compute(a)\nreturn x", "y = compute(a)\nreturn y"),
        ('{"customer_name": "Ann"}', '{"name": "Ann"}'),
        ("Short answer.", "Short answer.\n\nTODO: ask Bob"),
    ]
    edits._line.cache_clear()  # noqa: SLF001
    cold = [classify_edit(a, b) for a, b in pairs]
    warm = [classify_edit(a, b) for a, b in pairs]
    assert cold == warm
    assert len({result.kind for result in cold}) >= 2
