"""demo.reviewers: the ground truth the simulated annotators and bench/fidelity.py judge
labels by. Unsaved model instances: no database needed."""

import pytest

from demo.reviewers import label_is_right, label_truth, pair_quality
from feedback.models import Generation, Label


def _generation(good: bool | None, **sim: object) -> Generation:
    metadata = {} if good is None else {"sim": {"good": good, **sim}}
    return Generation(output="answer", metadata=metadata)


def _regen_pair(chosen_good: bool, rejected_good: bool) -> Label:
    return Label(
        kind="preference_pair",
        source="regenerate",
        generation=_generation(chosen_good),
        other_generation=_generation(rejected_good),
    )


@pytest.mark.parametrize(
    ("chosen", "rejected", "truth"),
    [(True, False, "right"), (True, True, "tie"), (False, False, "tie"), (False, True, "wrong")],
)
def test_a_regenerate_pair_of_equal_quality_is_a_tie(chosen, rejected, truth) -> None:
    label = _regen_pair(chosen, rejected)
    assert label_truth(label) == truth
    assert label_is_right(label) is (truth == "right")


@pytest.mark.parametrize(
    ("good", "sim", "truth"),
    [
        (
            False,
            {"behaviour": "edit_token_fix", "edit_kind": "correction", "final_good": True},
            "right",
        ),
        (True, {"behaviour": "edit_trim", "edit_kind": "trim", "final_good": True}, "tie"),
        (True, {"behaviour": "edit_noop", "edit_kind": "noop", "final_good": True}, "tie"),
        (False, {"behaviour": "edit_cosmetic", "edit_kind": "taste", "final_good": False}, "tie"),
        # The easier traffic records no final_good: a correction makes the text good.
        (False, {"behaviour": "edit_correction"}, "right"),
        (True, {"behaviour": "edit_cosmetic"}, "tie"),
    ],
)
def test_an_edit_pair_is_judged_by_the_users_final_text(good, sim, truth) -> None:
    label = Label(kind="preference_pair", source="edit", generation=_generation(good, **sim))
    assert pair_quality(label)[1] is good
    assert label_truth(label) == truth


def test_completions_and_unknown_truth() -> None:
    bad = _generation(False)
    assert label_truth(Label(kind="completion", label=False, generation=bad)) == "right"
    assert label_truth(Label(kind="completion", label=True, generation=bad)) == "wrong"
    assert label_truth(Label(kind="completion", label=True, generation=_generation(None))) is None
    assert label_is_right(_regen_pair(True, False)) is True
    unknown = Label(kind="preference_pair", source="regenerate", generation=_generation(True))
    assert label_truth(unknown) is None
    assert label_truth(Label(kind="high_retry", generation=bad)) == "right"
