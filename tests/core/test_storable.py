"""core.storable.check_text: the services' one way of refusing a note or a reason by field."""

from __future__ import annotations

import pytest

from core.storable import check_text


@pytest.mark.parametrize("text", ["", "fine", "é" * 10, "emoji 🙂"])
def test_storable_text_within_the_limit_passes(text):
    check_text("note", text, 10)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("x" * 11, "note: must be at most 10 characters."),
        ("a\x00b", "note: must not contain NUL characters"),
        ("cut \ud83d", "note: must not contain unpaired surrogates"),
    ],
)
def test_bad_text_is_refused_naming_the_field(text, says):
    with pytest.raises(ValueError) as raised:
        check_text("note", text, 10)
    assert str(raised.value).startswith(says)
