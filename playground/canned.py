"""The playground's model: canned answers, no network.

Deterministic: a prompt picks a topic by its words (or, failing that, by a stable hash), and
the n-th regeneration of the same prompt gets the topic's n-th answer, round the bank.
Answers carry numbers and names so an edit can correct a fact (an edit pair).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MODEL = "playground-canned-1"

BANK: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # topic: (words that pick it, answers)
    "paris": (
        ("paris", "france", "eiffel", "capital"),
        (
            "Paris is the capital of France. About 2.1 million people live in the city "
            "itself, and the Eiffel Tower opened in 1889.",
            "France's capital is Paris, on the Seine. The city proper has roughly 2.1 million "
            "inhabitants; the metropolitan area has about 12 million.",
            "The capital of France is Paris. It has been the capital since 987, when Hugh "
            "Capet made it the seat of the kingdom.",
        ),
    ),
    "python": (
        ("python", "list", "sort", "code", "function"),
        (
            "Use sorted() to get a new list: sorted([3, 1, 2]) returns [1, 2, 3]. "
            "list.sort() sorts in place and returns None.",
            "In Python, xs.sort() sorts the list in place, while sorted(xs) returns a sorted "
            "copy. Pass reverse=True for descending order, e.g. sorted(xs, reverse=True).",
            "sorted(xs, key=len) sorts by length. Sorting is stable, so items of equal length "
            "keep their order; it runs in O(n log n) time.",
        ),
    ),
    "tea": (
        ("tea", "brew", "green", "steep"),
        (
            "Steep green tea at 80 °C for 2 minutes. Boiling water makes it bitter.",
            "For green tea, let the water cool to about 75-80 °C and steep for 1 to 3 "
            "minutes; black tea takes boiling water and 4 minutes.",
            "Green tea: 2 grams of leaves per 200 ml, 80 °C, 2 minutes. Leaves can be "
            "steeped a second time.",
        ),
    ),
    "moon": (
        ("moon", "space", "apollo", "orbit"),
        (
            "Apollo 11 landed on the Moon on 20 July 1969. Neil Armstrong stepped out first, "
            "followed by Buzz Aldrin.",
            "The Moon orbits Earth at an average distance of 384,400 km and takes about 27.3 "
            "days to go round once.",
            "Twelve people walked on the Moon between 1969 and 1972, on six Apollo missions.",
        ),
    ),
}
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Answer:
    topic: str
    variant: int
    text: str


def answer(prompt: str, variant: int = 0) -> Answer:
    """The canned answer to `prompt`; `variant` counts regenerations (0 for the first ask)."""
    words = set(_WORD.findall(prompt.lower()))
    scores = {topic: len(words.intersection(keys)) for topic, (keys, _) in BANK.items()}
    topic = max(scores, key=lambda t: scores[t])
    if not scores[topic]:
        digest = hashlib.sha256(prompt.strip().lower().encode()).digest()
        topic = sorted(BANK)[digest[0] % len(BANK)]
    answers = BANK[topic][1]
    return Answer(topic=topic, variant=variant, text=answers[variant % len(answers)])
