"""Tests for feedback.edits: what an edit changed decides what it is, not only its size."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedback.edits import classify_edit

PYTHON = """Here is the fix:

```python
def window(items, size):
    out = []
    for i in range(len(items) - size + 1):
        if i < size:
            out.append(items[i : i + size])
    return out
```

It returns every window of `size` items."""

SQL = (
    "SELECT customer_id, SUM(total)\nFROM orders\nWHERE created_at > '2024-01-01'\n"
    "GROUP BY customer_id;"
)

EMAIL = """Hi Priya,

Thanks for your patience. Your refund of $149.00 was issued on 14 March and should
reach your card within five business days. Your order number is 88213.

Best regards,
Tom"""

SUMMARY = """The third-quarter report shows revenue of 4.2 million euros, up 12% on the
second quarter. Growth came mainly from new customers in Germany and France.

Costs rose by 3%, mostly in logistics. The board expects the trend to continue.

Headcount stayed flat at 140 people across both offices."""

GERMAN = "Die Lieferung kommt am Montag, dem 3. Juni, bei Frau Keller in Köln an."
FRENCH = "Le rapport est prêt. Il contient douze pages et sera envoyé à Claire demain."


def kind(output: str, final: str) -> str:
    return classify_edit(output, final).kind


@pytest.mark.parametrize(
    ("output", "final", "what"),
    [
        (PYTHON, PYTHON.replace("if i < size", "if i <= size"), "code_token"),
        (PYTHON, PYTHON.replace("len(items) - size", "len(items) + size"), "code_token"),
        (SQL, SQL.replace("created_at > ", "created_at >= "), "code_token"),
        (SQL, SQL.replace("SUM(total)", "COUNT(total)"), "code_token"),
    ],
)
def test_a_one_token_code_fix_is_a_confident_correction(output: str, final: str, what: str) -> None:
    edit = classify_edit(output, final)
    assert edit.kind == "correction"
    assert what in edit.changes
    assert edit.content == "code"
    assert edit.confidence >= 0.85
    assert edit.ratio < 0.05  # the old rule called all of these cosmetic


@pytest.mark.parametrize(
    ("output", "final", "what"),
    [
        (EMAIL, EMAIL.replace("14 March", "16 March"), "number"),
        (EMAIL, EMAIL.replace("14 March", "14 April"), "date"),
        (EMAIL, EMAIL.replace("$149.00", "$194.00"), "number"),
        (EMAIL, EMAIL.replace("$149.00", "€149.00"), "amount"),
        (EMAIL, EMAIL.replace("Hi Priya", "Hi Pradeep"), "name"),
        (EMAIL, EMAIL.replace("five business days", "ten business days"), "number"),
        (SUMMARY, SUMMARY.replace("4.2 million", "4.7 million"), "number"),
        (SUMMARY, SUMMARY.replace("Germany and France", "Germany and Spain"), "name"),
        (SUMMARY, SUMMARY.replace("expects the trend", "does not expect the trend"), "negation"),
        (GERMAN, GERMAN.replace("Montag", "Dienstag"), "date"),
        (GERMAN, GERMAN.replace("Frau Keller", "Frau Becker"), "name"),
        (FRENCH, FRENCH.replace("à Claire", "à Julien"), "name"),
        (FRENCH, FRENCH.replace("sera envoyé", "ne sera pas envoyé"), "negation"),
        ("Выручка выросла на 12% в марте.", "Выручка выросла на 21% в марте.", "number"),
    ],
)
def test_a_wrong_date_amount_name_or_negation_fixed_is_a_correction(
    output: str, final: str, what: str
) -> None:
    edit = classify_edit(output, final)
    assert edit.kind == "correction"
    assert what in edit.changes
    assert edit.confidence >= 0.85


@pytest.mark.parametrize(
    "final",
    [
        SUMMARY.rsplit("\n\n", 1)[0],  # the last paragraph dropped
        SUMMARY.split(" Growth came")[0],  # cut after the first sentence
        EMAIL.split("\n\nBest regards")[0],  # sign-off removed
    ],
)
def test_a_trim_of_a_good_answer_is_not_a_pair(final: str) -> None:
    output = EMAIL if final.startswith("Hi") else SUMMARY
    assert kind(output, final) == "trim"


@pytest.mark.parametrize(
    ("output", "final"),
    [
        (SUMMARY, SUMMARY.replace("  ", " ").replace("\n\n", "\n\n\n")),
        (SUMMARY, SUMMARY.replace("second quarter.", "second quarter!")),
        (SUMMARY, SUMMARY.replace("The board", "the board")),
        (SUMMARY, SUMMARY.replace("Costs rose", "**Costs rose**")),
        (EMAIL, EMAIL.replace("Hi Priya,", "Hi Priya —")),
        (FRENCH, FRENCH.replace("Le rapport", "LE RAPPORT")),
        (PYTHON, PYTHON.replace("    out = []", "    out  =  []")),
    ],
)
def test_whitespace_punctuation_casing_or_formatting_only_is_cosmetic(
    output: str, final: str
) -> None:
    assert kind(output, final) == "cosmetic"


@pytest.mark.parametrize(
    "note",
    [
        "TODO check the figures with finance",
        "thanks!",
        "Can you also add the Q2 numbers?",
        "(sent to Marco on Friday)",
        "Danke, passt so.",
        "# TODO: add type hints",
    ],
)
def test_an_appended_note_is_not_a_pair(note: str) -> None:
    output = PYTHON if note.startswith("#") else SUMMARY
    if note.startswith("#"):
        final = PYTHON.replace("    return out\n", f"    return out\n    {note}\n")
    else:
        final = f"{output}\n\n{note}"
    assert kind(output, final) == "note"


def test_a_big_rewrite_goes_to_review() -> None:
    final = "Q3: revenue up, costs up a little, same team. Fine overall."
    edit = classify_edit(SUMMARY, final)
    assert edit.kind == "rewrite"
    assert edit.confidence < 0.7


def test_a_reworded_sentence_without_facts_is_a_correction_for_review() -> None:
    final = SUMMARY.replace(
        "The board expects the trend to continue.", "Management is optimistic about Q4."
    )
    edit = classify_edit(SUMMARY, final)
    assert edit.kind == "correction"
    assert edit.confidence < 0.7  # a taste edit as often as a fix: a reviewer decides


def test_a_sentence_cut_from_the_middle_is_a_correction_for_review_even_with_a_name() -> None:
    final = SUMMARY.replace(" Growth came mainly from new customers in Germany and France.", "")
    edit = classify_edit(SUMMARY, final)
    assert edit.kind == "correction"
    assert edit.confidence < 0.7  # a cut of a fine sentence as often as of a wrong one


def test_a_dropped_negation_is_a_confident_correction() -> None:
    output = "Do not restart the server during the backup."
    edit = classify_edit(output, output.replace("not ", ""))
    assert edit.kind == "correction" and "negation" in edit.changes
    assert edit.confidence >= 0.85


def test_a_rename_at_every_use_is_a_correction_for_review() -> None:
    final = PYTHON.replace("out", "windows")
    edit = classify_edit(PYTHON, final)
    assert edit.kind == "correction" and "rename" in edit.changes
    assert edit.confidence < 0.7


def test_a_correction_is_less_sure_as_its_ratio_nears_a_rewrite() -> None:
    final = SUMMARY.replace("140", "150")
    far = classify_edit(SUMMARY, final)
    near = classify_edit(SUMMARY, final, ratio_max=far.ratio * 1.1)
    assert far.kind == near.kind == "correction"
    assert near.confidence < far.confidence


def test_a_ratio_above_the_maximum_is_a_rewrite_whatever_changed() -> None:
    assert classify_edit(EMAIL, EMAIL.replace("88213", "88214"), ratio_max=0.0).kind == "rewrite"


@given(st.text(max_size=200))
def test_identical_text_is_no_edit(text: str) -> None:
    edit = classify_edit(text, text)
    assert edit.kind == "none" and edit.changes == () and edit.ratio == 0.0


@given(
    words=st.lists(st.text(min_size=1, max_size=12).filter(lambda w: not w.isspace()), max_size=30),
    seps=st.lists(st.sampled_from([" ", "  ", "\n", "\t", " \n "]), min_size=1, max_size=30),
)
def test_whitespace_only_changes_are_never_corrections(words: list[str], seps: list[str]) -> None:
    output = " ".join(words)
    final = "".join(w + seps[i % len(seps)] for i, w in enumerate(words))
    edit = classify_edit(output, final)
    assert edit.kind in ("none", "cosmetic")


@given(st.text(max_size=120), st.text(max_size=120))
def test_any_pair_of_texts_gets_a_kind_and_a_confidence_in_range(a: str, b: str) -> None:
    edit = classify_edit(a, b)
    assert edit.kind in ("none", "correction", "cosmetic", "trim", "note", "rewrite")
    assert 0.0 <= edit.confidence <= 1.0
    assert 0.0 <= edit.ratio <= 1.0


JSON_OUT = """Here is the extracted data:

```json
{
  "customer_name": "Ines Gupta",
  "order_id": "B824460",
  "amount": 149.0
}
```"""


def test_renamed_keys_of_structured_data_are_a_correction_for_review() -> None:
    final = JSON_OUT.replace('"customer_name"', '"name"').replace('"order_id"', '"order_number"')
    edit = classify_edit(JSON_OUT, final)
    assert edit.kind == "correction" and edit.changes == ("key",)
    assert edit.confidence < 0.7


def test_a_value_fixed_in_structured_data_is_a_confident_correction() -> None:
    edit = classify_edit(JSON_OUT, JSON_OUT.replace("B824460", "B824461"))
    assert edit.kind == "correction" and edit.confidence >= 0.9


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("it doesn't fit our budget", "it does not fit our budget"),
        ("they don't need to", "they do not need to"),
        ("das geht nicht mehr", "das geht nicht mehr so"),
    ],
)
def test_a_contraction_spelled_out_is_no_negation(before: str, after: str) -> None:
    output = f"We looked at the offer closely, and {before}. Thanks again for your time."
    edit = classify_edit(output, output.replace(before, after))
    assert "negation" not in edit.changes
    assert edit.confidence < 0.9 or edit.kind != "correction"


def test_punctuation_in_a_sentence_that_mentions_code_is_cosmetic() -> None:
    # "O(n)" looks like a call, but the line is a sentence: a comma is no syntax here.
    output = (
        "Here's a version that keeps order.\n\nThis runs in O(n) time because membership "
        "checks on a set are O(1) on average, and it keeps the first appearance of each item."
    )
    edit = classify_edit(output, output.replace("on average, and", "on average and"))
    assert edit.kind == "cosmetic", edit


def test_a_fact_fixed_among_reworded_sentences_is_a_correction_for_review() -> None:
    final = SUMMARY.replace("4.2 million", "4.7 million").replace(
        "Costs rose by 3%, mostly in logistics.", "Logistics drove most of the rise in costs."
    )
    edit = classify_edit(SUMMARY, final)
    assert edit.kind == "correction" and "number" in edit.changes
    assert edit.confidence < 0.7


def test_a_fact_fixed_alone_keeps_its_confidence_beside_cosmetic_touches() -> None:
    final = SUMMARY.replace("4.2 million", "4.7 million").replace("flat at", "flat, at")
    edit = classify_edit(SUMMARY, final)
    assert edit.kind == "correction" and edit.confidence >= 0.9
