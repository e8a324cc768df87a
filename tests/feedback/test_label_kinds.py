"""Derivation (pure Python, no Django) names label kinds in a Literal; the model in choices.
They must be the same set, or a derived label could carry a kind the model refuses."""

from __future__ import annotations

from typing import get_args

from feedback.derivation import LabelKind
from feedback.models import Label


def test_derivations_label_kinds_are_the_models():
    assert set(get_args(LabelKind)) == set(Label.Kind.values)
