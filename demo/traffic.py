"""Deterministic, realistic simulated traffic for the ingestion API (docs/ingestion.md).

Pure Python (plus `rapidfuzz`), no Django: used by the `seed_demo` and `simulate_traffic`
management commands, benchmarks and label-fidelity measurement.

Contracts of `simulate_traffic`:

- Every event dict is a valid event per docs/ingestion.md: keys `id`, `type`,
  `timestamp` (ISO 8601, UTC, millisecond precision, "Z" suffix), `session_id`, `user_id`
  and the fields of its type, nothing else. Optional fields (`text` on copy, `comment` on
  rating) are left out when absent; `replaces` on a generation is always present (None for a
  first generation).
- Output is a function of (sessions, seed, start, batch_size, id_prefix) only: only
  `random.Random(seed)` is used, never the global random state, and the clock only for the
  default `start`. Ids embed prefix and seed (`f"{id_prefix}-{seed}-{n}"` for events), so a
  re-run with the same arguments replays the same ids (idempotent) and another seed or
  prefix gives new ones.
- Sessions start within the 14 days before `start`; every event is before `start`. Events of
  a session are seconds to minutes apart in causal order (generation < its view, copy,
  share, edits, rating, regenerate < the replacing generation < ... < session outcome).
  Timestamps are unique across the whole run.
- Ground truth lives in each generation's `metadata["sim"]`: `good` (was the output fine),
  `behaviour` (what the simulated user did with it, one of `BEHAVIOURS`, or of
  `HARD_BEHAVIOURS` in harder traffic), `flaw` (what is wrong with a bad output, else
  None) and, for edit behaviours, `edit_ratio` (Indel
  normalised distance between output and the final edit). Edit buckets are verified with
  rapidfuzz: `edit_cosmetic` < 0.05, `edit_correction` in [0.10, 0.85], `edit_rewrite` > 0.92.
- Delivery: events are sent roughly in timestamp order in batches of at most `batch_size`
  (all full but the last few). About 3% are replayed (an identical copy in a strictly later
  batch) and about 5% are held back into a later batch; some held-back generations are sent
  after the batch holding their own edit or copy. `duplicates` counts the replayed copies
  (total events in batches minus distinct ids); `late` counts distinct events whose first
  copy is sent in a batch after some batch that holds an event with a later timestamp.

Harder traffic (`hard=True`, used by bench/fidelity.py): the same mix plus what makes
behaviour mislead in the real world, each at a module-level rate (REGENERATE_GOOD_RATE ...
ABANDONED_SENT_RATE): good answers regenerated for variety; bad answers copied (for a bug
report); bad answers fixed with one token (code operator or keyword, number, date or name:
a real correction with an edit ratio far below the cosmetic bound); good answers restyled,
trimmed at the end or given the user's notes in the edit box; edits back to exactly the
output; edits sent in a later session of the same user (session id `<session>-later<n>`,
hours after the session; the generation id is the earlier session's); and outcomes: every
session truly ends completed or abandoned, but `silent_outcome_rate` of the completed ones
(1.0: a product that never sends outcome events) and most abandoned ones send no event.
Extra ground truth in `metadata["sim"]` (hard only): `edit_kind` (one of EDIT_KINDS, None
without an edit), `final_good` (is the user's final text good), `fix` (what a one-token fix
changed), `copy_reason` ("bug_report" for a copied bad answer), `edit_session` ("later"),
and on every generation `session_outcome` (true outcome) and `outcome_sent`. Derivation
never reads `metadata["sim"]`. With `hard=False` the traffic is exactly what it was.

Models: `acme-chat-*` answer everything, `acme-code-1` most code questions. In the second
half of the window a new version, `acme-code-2`, takes most code traffic, and its answers
to code questions are regenerated twice as often (`REGRESSED_REGENERATE`): a regression
for the Signals page to show (docs/signals.md).

Typical mix (5,000 sessions; frequencies are per prompt, i.e. per last generation of a
regenerate chain): view only 30%, copy 21%, share 5%, copy and share 3%, cosmetic edit 13%,
correction 14%, rewrite 2.5%, nothing at all 11%. Regenerations per prompt: none 76%, one
17%, two 4.5%, three or four 2.4% (high retry). About 10% of generations are rated. Sessions:
61% completed with a signal, 13% explicitly abandoned, 26% with no outcome event (left to
the inactivity timeout). About 62% of all generations are good (79% of the last ones in a
chain); about 8.5 events per session.
"""

import copy
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rapidfuzz.distance import Indel

__all__ = [
    "ABANDONED_SENT_RATE",
    "BEHAVIOURS",
    "COPY_BAD_RATE",
    "COSMETIC_MAX",
    "CORRECTION_MAX",
    "CORRECTION_MIN",
    "EDIT_KINDS",
    "EVENT_TYPES",
    "FEATURES",
    "HARD_BEHAVIOURS",
    "LATER_EDIT_RATE",
    "NOOP_EDIT_RATE",
    "NOTE_EDIT_RATE",
    "RATE_BAD_RATE",
    "RATE_GOOD_RATE",
    "REGENERATE_GOOD_RATE",
    "REWRITE_MIN",
    "SILENT_OUTCOME_RATE",
    "SimulatedTraffic",
    "TASTE_EDIT_RATE",
    "TOKEN_FIXABLE",
    "TOKEN_FIX_RATE",
    "TRIM_EDIT_RATE",
    "edit_ratio",
    "simulate_traffic",
]

EVENT_TYPES = (
    "generation",
    "edit",
    "regenerate",
    "copy",
    "share",
    "view",
    "rating",
    "session_outcome",
)
FEATURES = ("summarise", "code", "email", "translate", "support", "brainstorm", "extract_json")
BEHAVIOURS = (
    "view",  # passive acceptance: only view events
    "copy",
    "share",
    "copy_share",
    "edit_cosmetic",
    "edit_correction",
    "edit_rewrite",
    "regenerated",  # the user asked for another answer instead
    "none",  # nothing at all followed
)
COSMETIC_MAX = 0.05  # edit_cosmetic: ratio strictly below
CORRECTION_MIN = 0.10  # edit_correction: ratio within [min, max]
CORRECTION_MAX = 0.85
REWRITE_MIN = 0.92  # edit_rewrite: ratio strictly above

OUTPUT_MIN_CHARS = 200
OUTPUT_MAX_CHARS = 1500
WINDOW = timedelta(days=14)
DUPLICATE_RATE = 0.03
LATE_RATE = 0.035
LATE_BEFORE_OWN_ACTION_RATE = 0.12  # generations with an edit/copy: sent after that action

# Harder traffic (`simulate_traffic(hard=True)`): what real users and products do that makes
# behaviour mislead. Each is a rate per opportunity, checked by tests/demo/test_traffic.py
# and printed by bench/fidelity.py.
REGENERATE_GOOD_RATE = 0.15  # a good answer (chain position < 5) regenerated for variety
COPY_BAD_RATE = 0.15  # a bad final answer copied (to paste into a bug report)
TOKEN_FIX_RATE = 0.20  # a bad final answer with a TOKEN_FIXABLE flaw fixed with one token
TOKEN_FIXABLE = frozenset({"buggy_code", "wrong_facts", "wrong_value", "hallucination"})
TASTE_EDIT_RATE = 0.10  # a good final answer restyled to taste (words, lines, renames)
TRIM_EDIT_RATE = 0.06  # a good final answer trimmed at the end
NOTE_EDIT_RATE = 0.04  # a good final answer with the user's own notes typed into the box
NOOP_EDIT_RATE = 0.04  # any final answer "edited" back to exactly the same text
LATER_EDIT_RATE = 0.10  # an edited answer whose edits arrive in a later session of the user
SILENT_OUTCOME_RATE = 0.45  # truly completed sessions that send no session_outcome event
ABANDONED_SENT_RATE = 0.40  # truly abandoned sessions that say so with an event
RATE_GOOD_RATE = 0.02  # a good answer rated at all: users rate rarely ...
RATE_BAD_RATE = 0.08  # ... and mostly when something is wrong
EDIT_KINDS = ("correction", "rewrite", "taste", "trim", "note", "noop")
HARD_BEHAVIOURS = ("edit_token_fix", "edit_taste", "edit_trim", "edit_note", "edit_noop")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_SEC = 1000
_MIN = 60 * _SEC


@dataclass(frozen=True)
class SimulatedTraffic:
    """Simulated traffic, ready to POST batch by batch (see the module docstring)."""

    batches: list[list[dict]]  # event dicts in POST order, each batch <= batch_size events
    sessions: int
    events: int  # distinct events (not counting replayed duplicates)
    duplicates: int  # replayed copies put into batches
    late: int  # distinct events sent after a batch holding a later event


def edit_ratio(output: str, final_text: str) -> float:
    """Normalised Indel distance between a model output and the user's final text (0..1)."""
    return Indel.normalized_distance(output, final_text)


# ---------------------------------------------------------------------------------------
# Shared banks
# ---------------------------------------------------------------------------------------

_FIRST = (
    "Amara", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kemi", "Lars", "Maya", "Nikhil", "Olivia", "Pablo", "Quinn", "Rosa", "Samir", "Tanya",
    "Umar", "Vera", "Wei", "Yusuf", "Zoe",
)  # fmt: skip
_LAST = (
    "Adeyemi", "Berg", "Castillo", "Dubois", "Eriksen", "Fischer", "Gupta", "Hansen", "Ito",
    "Jansen", "Kowalski", "Lopez", "Martin", "Novak", "O'Brien", "Petrov", "Rossi", "Schmidt",
    "Tanaka", "Varga", "Weber", "Yilmaz",
)  # fmt: skip
_COMPANIES = (
    "Northwind Logistics", "Bluepeak Analytics", "Harbor & Vale", "Quillstone Media",
    "Redfern Energy", "Lumen Health", "Tidewater Foods", "Corvid Security", "Brightline Rail",
    "Oakmont Insurance", "Kestrel Robotics", "Silverbirch Retail",
)  # fmt: skip
_ROLES = (
    "Head of Operations", "Procurement Manager", "CTO", "Project Lead", "Finance Director",
    "Account Manager", "Marketing Lead", "Office Manager",
)  # fmt: skip
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_CURRENCIES = ("$", "€", "£")

# Small wording/spelling changes a user makes without changing the meaning.
_COSMETIC_SWAPS = (
    ("approximately", "about"), ("However, ", "But "), ("utilise", "use"), ("e.g.", "eg"),
    ("summarize", "summarise"), ("organization", "organisation"), ("prioritize", "prioritise"),
    ("Hi there,", "Hello,"), ("Thanks", "Thank you"), ("Best,", "Best regards,"),
    ("Let me know", "Do let me know"), ("per cent", "%"), ("e-mail", "email"),
    ("Kind regards,", "Regards,"), ("!", "."), ("Hope this helps", "Hope that helps"),
    ("straight away", "right away"), ("a couple of", "two"), ("whole team", "team"),
    ("doesn't", "does not"), ("don't", "do not"), ("we'll", "we will"), ("I'm", "I am"),
)  # fmt: skip
_LIST_ITEM = re.compile(r"^(?:[-*•] |\d+\. )")
_GLITCH_WORDS = ("the", "to", "and", "a", "of", "for", "is")

_RATING_COMMENTS_GOOD = (
    "Perfect, thanks!", "Exactly what I needed.", "Clear and to the point.",
    "Great, saved me time.", "Nice, will use this.",
)  # fmt: skip
_RATING_COMMENTS_BAD = (
    "The numbers are wrong.", "Too long.", "Doesn't answer my question.", "Cut off halfway.",
    "Wrong tone for a customer.", "This doesn't work.", "Not what I asked for.",
)  # fmt: skip

_ABANDON_SIGNALS = ("user_closed", "navigated_away", "session_expired")

# What users type into the edit box that is not part of an answer.
_USER_NOTES = (
    "notes: ask Ben about this on Monday", "TODO send to Maya before 3pm", "ticket #4821",
    "draft v2 - check with legal first", "(copied from the assistant, double-check numbers)",
    "remember: budget call Thursday", "for the weekly report", "see also the Q3 deck",
)  # fmt: skip
# One-token code fixes: (buggy token, fixed token), applied inside code blocks only.
_CODE_TOKEN_FIXES = (
    (" < ", " <= "), (" > ", " >= "), (" <= ", " < "), (" >= ", " > "), ("- size", "+ size"),
    (" * attempt", " ** attempt"), ("DESC", "ASC"), ("revenue\n", "revenue DESC\n"),
    ("COUNT(user_id)", "COUNT(DISTINCT user_id)"), ("JOIN ", "LEFT JOIN "), ("[0]", "[-1]"),
    ("set(", "dict.fromkeys("), (".lower()", ".casefold()"), ("+= 1", "+= 2"),
)  # fmt: skip
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


# ---------------------------------------------------------------------------------------
# Tasks: a prompt and a way to render good or flawed outputs for it
# ---------------------------------------------------------------------------------------

_Render = Callable[[random.Random, str | None], str]


@dataclass(frozen=True)
class _Task:
    feature: str
    prompt: str
    render: _Render  # (rng, flaw or None) -> output text
    flaws: tuple[str, ...]
    systems: tuple[str, ...]
    notes: tuple[str, ...] = ()  # prose lines a user may add or swap in when correcting
    inline_notes: tuple[str, ...] = ()  # lines a user may add inside a code/JSON block
    inline_anchor: str | None = None  # inline notes go right after the first such line
    renames: tuple[tuple[str, str], ...] = ()  # identifier renames a user may apply
    rewrites: tuple[str, ...] = ()  # short texts a user may write instead of the output
    completed_signals: tuple[str, ...] = ("task_marked_done",)
    abandoned_signals: tuple[str, ...] = _ABANDON_SIGNALS
    closers: tuple[str, ...] = ("Let me know if you'd like me to adjust anything.",)


def _bullets(r: random.Random, items: Sequence[str]) -> str:
    style = r.choice(("- ", "* ", "• ", "n"))
    if style == "n":
        return "\n".join(f"{i}. {item}" for i, item in enumerate(items, start=1))
    return "\n".join(style + item for item in items)


def _task_summarise(r: random.Random, today: date) -> _Task:
    company = r.choice(_COMPANIES)
    quarter = (today.month - 1) // 3  # the last finished quarter
    year = today.year if quarter else today.year - 1
    quarter = quarter or 4
    period = f"Q{quarter} {year}"
    cur = r.choice(_CURRENCIES)
    revenue = round(r.uniform(4, 480), 1)
    growth = round(r.uniform(-12, 28), 1)
    margin = r.randint(28, 71)
    prev_margin = margin + r.choice((-5, -3, -2, -1, 1, 2, 4, 6))
    regions = r.sample(
        ("the Nordics", "Germany", "the UK", "North America", "Southeast Asia", "Iberia",
         "the Benelux", "Japan", "Brazil", "France"), 3)  # fmt: skip
    share = r.randint(34, 58)
    headcount = r.randint(60, 4200)
    hc_delta = r.randint(-40, 120)
    churn = round(r.uniform(0.8, 9.5), 1)
    prev_churn = round(max(0.3, churn + r.uniform(-2, 2)), 1)
    risks = r.sample(
        (
            (
                "Rising freight costs could squeeze margins further if fuel prices stay high.",
                "freight costs",
            ),
            (
                "A key supplier contract expires in the spring and renegotiation has not started.",
                "the expiring supplier contract",
            ),
            (
                "Two large customers are reviewing their contracts ahead of renewal.",
                "two contract renewals",
            ),
            (
                "Hiring for senior engineering roles is taking longer than planned.",
                "slow senior hiring",
            ),
            (
                "New data-protection rules may require changes to the customer portal.",
                "new data-protection rules",
            ),
            (
                "Currency swings added volatility to reported revenue outside the home market.",
                "currency volatility",
            ),
            (
                "The migration to the new billing system is three weeks behind schedule.",
                "the delayed billing migration",
            ),
        ),
        2,
    )
    initiative = r.choice(
        (
            (
                "The board approved a pilot of the self-service portal in two regions.",
                "a self-service portal pilot",
            ),
            (
                "Management will open a second warehouse to cut delivery times.",
                "a second warehouse",
            ),
            (
                "A cost review will target savings of around 5% in operating expenses.",
                "a cost review targeting 5% savings",
            ),
            (
                "The team will launch the annual pricing update in the first month.",
                "the annual pricing update",
            ),
        )
    )
    margin_reason = r.choice(
        ("product mix", "pricing changes", "higher input costs", "lower discounts")
    )
    up = "up" if growth >= 0 else "down"
    m_dir = "improved" if margin > prev_margin else "slipped"
    hc_dir = "grew" if hc_delta >= 0 else "fell"
    churn_cmp = "down from" if churn < prev_churn else "up from"
    weak = r.choice(("was flat", "declined slightly", "missed its target"))
    report = (
        f"{company} — {period} business update\n\n"
        f"Revenue for the quarter was {cur}{revenue:.1f}M, {up} {abs(growth):.1f}% compared "
        f"with the same quarter last year. Gross margin {m_dir} to {margin}% from "
        f"{prev_margin}% in the previous quarter, mainly because of "
        f"{margin_reason}."
        f"\n\n{regions[0][0].upper() + regions[0][1:]} remained our strongest market and "
        f"accounted for {share}% of sales. {regions[1][0].upper() + regions[1][1:]} grew "
        f"steadily, while {regions[2]} {weak}.\n\n"
        f"Headcount {hc_dir} by {abs(hc_delta)} to {headcount} people. Customer churn was "
        f"{churn}%, {churn_cmp} {prev_churn}% last quarter.\n\n"
        f"Risks to watch: {risks[0][0]} {risks[1][0]}\n\n"
        f"Next quarter: {initiative[0]}"
    )
    prompt = r.choice(
        (
            f"Summarise this report in a few bullet points:\n\n{report}",
            f"Can you give me a short summary of the following for my manager?\n\n{report}",
            f"TL;DR please:\n\n{report}",
            f"Summarise the key numbers and risks from this quarterly update.\n\n{report}",
            f"I need the main points of this for a board slide:\n\n{report}",
        )
    )

    def render(g: random.Random, flaw: str | None) -> str:
        rev, gr, reg, ch = revenue, growth, regions, churn
        if flaw == "wrong_facts":
            pick = g.randint(0, 2)
            if pick == 0:
                gr = round(-growth if abs(growth) > 2 else growth + 9.5, 1)
            elif pick == 1:
                rev = round(revenue * g.choice((0.1, 10, 1.3, 0.7)), 1)
            else:
                reg = [regions[2], regions[1], regions[0]]
            ch = round(churn + g.choice((-0.5, 2.1, 3.4)), 1)
        g_up = "up" if gr >= 0 else "down"
        if flaw == "wrong_tone":
            mood = "pretty good" if gr >= 0 else "kinda rough"
            return (
                f"Okay so {company} had a {mood} quarter tbh 😅 They pulled in "
                f"{cur}{rev:.1f}M, which is {g_up} like {abs(gr):.1f}% lol. Margins are at "
                f"{margin}%, whatever that means for you. {reg[0][0].upper() + reg[0][1:]} "
                f"is basically carrying the team and {reg[2]} not so much 🙈\n\n"
                f"People-wise they're at {headcount} now and churn is {ch}%. There's some "
                f"scary stuff about {risks[0][1]} and {risks[1][1]} but honestly who knows. "
                f"Next up is {initiative[1]}, so fingers crossed!! 🚀🚀"
            )
        items = [
            f"Revenue: {cur}{rev:.1f}M, {g_up} {abs(gr):.1f}% year on year.",
            f"Gross margin {m_dir} to {margin}% (from {prev_margin}%).",
            f"{reg[0][0].upper() + reg[0][1:]} is the largest market ({share}% of sales); "
            f"{reg[2]} {weak}.",
            f"Headcount {hc_dir} to {headcount}; churn at {ch}% ({churn_cmp} {prev_churn}%).",
            f"Key risks: {risks[0][1]} and {risks[1][1]}.",
            f"Next quarter: {initiative[1]}.",
        ]
        if g.random() < 0.4:
            items[0] = items[0][:-1] + f", with gross margin at {margin}%."
            del items[1]
        if flaw == "hallucination":
            items.insert(
                g.randint(1, len(items)),
                g.choice(
                    (
                        f"The CEO also announced a merger with {g.choice(_COMPANIES)}, "
                        f"expected to close next quarter.",
                        "Revenue is forecast to double next year on the back of new contracts.",
                        f"The company plans to list on the stock exchange in {year + 1}.",
                        "All regions beat their targets for the third quarter in a row.",
                    )
                ),
            )
        intro = g.choice(
            (
                f"Here's a summary of the {period} report for {company}:",
                f"Summary — {company}, {period}:",
                f"Key points from the {period} update:",
                f"{company} in {period}, in short:",
            )
        )
        closing = g.choice(
            (
                "",
                "Overall a solid quarter, with the risks above worth watching."
                if gr >= 0
                else "Overall a weaker quarter; the risks above deserve attention.",
                "Let me know if you need this as a single paragraph instead.",
            )
        )
        text = f"{intro}\n\n{_bullets(g, items)}"
        if g.random() < 0.55:
            text += (
                f"\n\nFor context: the margin movement was driven mainly by {margin_reason}, "
                f"and {regions[1]} is the region with the most momentum. "
                + g.choice(
                    (
                        "Nothing in the report suggests a change to the full-year outlook, "
                        "but it does not give guidance either.",
                        "The report does not quantify the risks, so it is worth asking finance "
                        "for a sensitivity estimate before the board meeting.",
                        f"Churn is the number to watch: it moved from {prev_churn}% to {ch}%.",
                    )
                )
            )
        if g.random() < 0.3:
            points = [
                f"How exposed is the margin to {risks[0][1]}?",
                f"What would it take for {reg[2]} to get back on track?",
                f"When will we see first results from {initiative[1]}?",
            ]
            text += "\n\nSuggested questions for the meeting:\n" + _bullets(g, points)
        return f"{text}\n\n{closing}" if closing else text

    return _Task(
        feature="summarise",
        prompt=prompt,
        render=render,
        flaws=("wrong_facts", "wrong_facts", "truncated", "wrong_tone", "hallucination"),
        systems=(
            "You are a concise analyst assistant. Answer in plain English.",
            "You summarise business documents for busy executives. Be accurate with numbers.",
        ),
        notes=(
            "Figures are preliminary until the audit is finished.",
            "Source: internal quarterly report, not for external distribution.",
            f"Action: finance to follow up on {risks[0][1]} before the next board meeting.",
            "Numbers double-checked against the finance dashboard.",
            f"Context: this is our {period} update, first quarter under the new plan.",
        ),
        rewrites=(
            f"Rev {cur}{revenue:.1f}M ({growth:+.1f}%).",
            f"Churn {churn}%; see risks.",
            "Flat quarter, two risks.",
            "See report, p. 2.",
            "OK quarter.",
        ),
        completed_signals=("document_saved", "task_marked_done"),
        closers=("I can also turn this into a slide with three headline numbers if that helps.",),
    )


@dataclass(frozen=True)
class _CodeSpec:
    lang: str
    prompt: str
    good: tuple[str, ...]  # alternative correct solutions
    bad: str  # a plausible but buggy solution
    explain_good: tuple[str, ...]
    explain_bad: str
    usage: str | None
    rewrites: tuple[str, ...]
    renames: tuple[tuple[str, str], ...]


def _spec_dedupe(r: random.Random) -> _CodeSpec:
    fn = r.choice(("dedupe", "unique_in_order", "remove_duplicates"))
    arg = r.choice(("items", "values", "records"))
    prompt = r.choice(
        (
            f"Write a Python function `{fn}` that removes duplicates from a list but keeps "
            "the original order.",
            "How do I remove duplicates from a list in Python without changing the order? "
            f"Please wrap it in a function called {fn}.",
            f"I need a helper `{fn}({arg})` that returns the list without duplicate entries, "
            "first occurrence wins. Python 3.12.",
        )
    )
    loop = (
        f"def {fn}({arg}: list) -> list:\n"
        f'    """Return {arg} without duplicates, keeping the first occurrence."""\n'
        "    seen = set()\n"
        "    result = []\n"
        f"    for item in {arg}:\n"
        "        if item not in seen:\n"
        "            seen.add(item)\n"
        "            result.append(item)\n"
        "    return result"
    )
    fromkeys = (
        f"def {fn}({arg}: list) -> list:\n"
        f'    """Return {arg} without duplicates, keeping the first occurrence."""\n'
        "    # dicts keep insertion order, so the first occurrence wins\n"
        f"    return list(dict.fromkeys({arg}))"
    )
    bad = (
        f"def {fn}({arg}: list) -> list:\n"
        f'    """Return {arg} without duplicates."""\n'
        f"    return list(set({arg}))"
    )
    return _CodeSpec(
        lang="python",
        prompt=prompt,
        good=(loop, fromkeys),
        bad=bad,
        explain_good=(
            "This runs in O(n) time because membership checks on a set (or dict) are O(1) "
            "on average, and it keeps the order in which items first appear. The elements "
            "must be hashable; for unhashable items such as dicts, compare a key instead.",
            "Each element is looked up once, so the whole function is linear in the length "
            "of the list. Order is preserved because we only ever append the first time we "
            "see an element. Note that this needs hashable elements.",
        ),
        explain_bad=(
            "Converting to a set removes duplicates in one step and keeps the original order "
            "of the elements, so this is the most efficient and readable option."
        ),
        usage=f">>> {fn}([3, 1, 3, 2, 1])\n[3, 1, 2]",
        rewrites=(f"list(dict.fromkeys({arg}))", "Use dict.fromkeys."),
        renames=((fn, "dedupe_keep_order"), (arg, "seq")),
    )


def _spec_chunk(r: random.Random) -> _CodeSpec:
    fn = r.choice(("chunked", "batch", "split_into_chunks"))
    arg = r.choice(("items", "rows", "ids"))
    prompt = r.choice(
        (
            f"Python: split a list into chunks of n elements. Call it {fn}.",
            f"Write `{fn}({arg}, size)` that returns consecutive chunks of at most `size` "
            "elements. Raise on a non-positive size.",
            f"I have a list of {arg} and need to send them to an API in batches of 100. "
            "Can you write a small helper for the batching?",
        )
    )
    good = (
        f"def {fn}({arg}: list, size: int) -> list[list]:\n"
        f'    """Split {arg} into consecutive chunks of at most `size` elements."""\n'
        "    if size <= 0:\n"
        '        raise ValueError("size must be positive")\n'
        f"    return [{arg}[i : i + size] for i in range(0, len({arg}), size)]"
    )
    good_iter = (
        "from itertools import islice\n\n\n"
        f"def {fn}({arg}, size: int):\n"
        f'    """Yield consecutive chunks of at most `size` elements from {arg}."""\n'
        "    if size <= 0:\n"
        '        raise ValueError("size must be positive")\n'
        f"    iterator = iter({arg})\n"
        "    while chunk := list(islice(iterator, size)):\n"
        "        yield chunk"
    )
    bad = (
        f"def {fn}({arg}: list, size: int) -> list[list]:\n"
        f'    """Split {arg} into chunks of `size` elements."""\n'
        f"    return [{arg}[i : i + size] for i in range(0, len({arg}) - size, size)]"
    )
    return _CodeSpec(
        lang="python",
        prompt=prompt,
        good=(good, good_iter),
        bad=bad,
        explain_good=(
            "The last chunk may be shorter than `size` when the length is not a multiple of "
            "it. Slicing never raises for out-of-range ends, so no special case is needed for "
            "the tail. A non-positive size would loop forever or make no sense, so it raises.",
            "Every element ends up in exactly one chunk and the order is preserved; only the "
            "final chunk can be shorter. For very large inputs prefer the generator form so "
            "you never hold all chunks in memory at once.",
        ),
        explain_bad=(
            "The range stops before the end so that every chunk has exactly `size` elements, "
            "which avoids sending partial batches and handles all list lengths correctly."
        ),
        usage=f">>> list({fn}([1, 2, 3, 4, 5], 2))\n[[1, 2], [3, 4], [5]]",
        rewrites=("itertools.batched(xs, n)", "Use itertools.batched."),
        renames=((fn, "batched"), ("size", "n")),
    )


def _spec_retry(r: random.Random) -> _CodeSpec:
    fn = r.choice(("retry", "with_retries", "call_with_backoff"))
    attempts = r.choice((3, 4, 5))
    prompt = r.choice(
        (
            f"Write a Python helper `{fn}(func)` that retries a flaky call up to {attempts} "
            "times with exponential backoff and re-raises the last error.",
            "Our HTTP client sometimes times out. Can you give me a simple retry wrapper with "
            f"exponential backoff ({attempts} attempts)?",
        )
    )
    good = (
        "import time\n\n\n"
        f"def {fn}(func, attempts: int = {attempts}, base_delay: float = 0.5):\n"
        '    """Call func(), retrying on exception with exponential backoff."""\n'
        "    for attempt in range(attempts):\n"
        "        try:\n"
        "            return func()\n"
        "        except Exception:\n"
        "            if attempt == attempts - 1:\n"
        "                raise\n"
        "            time.sleep(base_delay * 2**attempt)"
    )
    bad = (
        "import time\n\n\n"
        f"def {fn}(func, attempts: int = {attempts}, base_delay: float = 0.5):\n"
        '    """Call func(), retrying on exception with exponential backoff."""\n'
        "    for attempt in range(attempts):\n"
        "        try:\n"
        "            return func()\n"
        "        except Exception:\n"
        "            time.sleep(base_delay * 2 * attempt)"
    )
    return _CodeSpec(
        lang="python",
        prompt=prompt,
        good=(good,),
        bad=bad,
        explain_good=(
            "The delay doubles after each failure (0.5 s, 1 s, 2 s, ...). On the last "
            "attempt the original exception is re-raised so callers still see what went "
            "wrong. In production, catch only the exceptions you expect (for example "
            "timeouts) rather than every Exception, and consider adding jitter.",
        ),
        explain_bad=(
            "The delay grows with every attempt, and if all attempts fail the function "
            "simply gives up, so callers are never interrupted by an exception."
        ),
        usage=f">>> {fn}(lambda: client.get('/status'))",
        rewrites=("Use tenacity.", "@retry(stop=3)"),
        renames=((fn, "retrying"), ("base_delay", "delay")),
    )


def _spec_moving_average(r: random.Random) -> _CodeSpec:
    fn = r.choice(("moving_average", "rolling_mean", "sma"))
    prompt = r.choice(
        (
            f"Write `{fn}(values, window)` in plain Python (no numpy) returning the simple "
            "moving average for each full window.",
            "I need a rolling mean over a list of daily sales without pandas. Window size is "
            "a parameter. Python please.",
        )
    )
    good = (
        f"def {fn}(values: list[float], window: int) -> list[float]:\n"
        '    """Simple moving average over each full window of `values`."""\n'
        "    if window <= 0:\n"
        '        raise ValueError("window must be positive")\n'
        "    averages = []\n"
        "    total = 0.0\n"
        "    for i, value in enumerate(values):\n"
        "        total += value\n"
        "        if i >= window:\n"
        "            total -= values[i - window]\n"
        "        if i >= window - 1:\n"
        "            averages.append(total / window)\n"
        "    return averages"
    )
    bad = good.replace("if i >= window:", "if i > window:")
    return _CodeSpec(
        lang="python",
        prompt=prompt,
        good=(good,),
        bad=bad,
        explain_good=(
            "It keeps a running total instead of summing every window again, so it is O(n) "
            "rather than O(n * window). The result has len(values) - window + 1 entries; an "
            "input shorter than the window gives an empty list.",
        ),
        explain_bad=(
            "A running total keeps this O(n). Values leave the window once it is full, so "
            "each average covers exactly `window` elements."
        ),
        usage=f">>> {fn}([1, 2, 3, 4, 5], 3)\n[2.0, 3.0, 4.0]",
        rewrites=("Use statistics.fmean.", "pd.rolling(3).mean()"),
        renames=((fn, "rolling_average"), ("total", "running")),
    )


def _spec_fix_count_words(r: random.Random) -> _CodeSpec:
    broken = (
        "def count_words(path):\n"
        "    counts = {}\n"
        "    for line in open(path):\n"
        "        word = line.split()[0]\n"
        "        counts[word] += 1\n"
        "    return counts"
    )
    prompt = r.choice(
        (
            "This function is supposed to count words in a file but it crashes. Can you fix "
            f"it?\n\n```python\n{broken}\n```",
            f"Why does this throw an IndexError on some files?\n\n```python\n{broken}\n```",
        )
    )
    good = (
        "from collections import Counter\n\n\n"
        "def count_words(path: str) -> Counter:\n"
        "    counts = Counter()\n"
        '    with open(path, encoding="utf-8") as handle:\n'
        "        for line in handle:\n"
        "            counts.update(line.split())\n"
        "    return counts"
    )
    bad = (
        "def count_words(path):\n"
        "    counts = {}\n"
        "    for line in open(path):\n"
        "        if not line.strip():\n"
        "            continue\n"
        "        word = line.split()[0]\n"
        "        counts[word] += 1\n"
        "    return counts"
    )
    return _CodeSpec(
        lang="python",
        prompt=prompt,
        good=(good,),
        bad=bad,
        explain_good=(
            "There were three problems: `line.split()[0]` raises IndexError on empty lines "
            "and only ever counts the first word of a line; `counts[word] += 1` raises "
            "KeyError the first time a word is seen; and the file was never closed. "
            "`Counter.update` counts every word and handles missing keys, and the `with` "
            "block closes the file even if something fails.",
        ),
        explain_bad=(
            "The IndexError comes from empty lines, where `split()` returns an empty list. "
            "Skipping blank lines fixes the crash and the rest of the function works as is."
        ),
        usage='>>> count_words("notes.txt").most_common(3)',
        rewrites=("Use Counter.", "wc -w notes.txt"),
        renames=(("counts", "tally"), ("handle", "fh")),
    )


def _spec_slugify(r: random.Random) -> _CodeSpec:
    prompt = r.choice(
        (
            "Write a Python `slugify(text)` that turns 'Hello, World!' into 'hello-world' and "
            "strips accents.",
            "Need a function to make URL slugs from article titles (lowercase, dashes, no "
            "accents). Standard library only.",
        )
    )
    good = (
        "import re\nimport unicodedata\n\n\n"
        "def slugify(text: str) -> str:\n"
        '    """Turn a title into a URL slug: lowercase ASCII words joined by dashes."""\n'
        '    normalized = unicodedata.normalize("NFKD", text)\n'
        '    ascii_text = normalized.encode("ascii", "ignore").decode()\n'
        '    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")'
    )
    bad = (
        "import re\nimport unicodedata\n\n\n"
        "def slugify(text: str) -> str:\n"
        '    """Turn a title into a URL slug: lowercase ASCII words joined by dashes."""\n'
        '    normalized = unicodedata.normalize("NFKD", text)\n'
        '    ascii_text = normalized.encode("ascii", "ignore").decode()\n'
        '    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-").lower()'
    )
    return _CodeSpec(
        lang="python",
        prompt=prompt,
        good=(good,),
        bad=bad,
        explain_good=(
            "NFKD normalisation splits accented letters into a base letter plus a combining "
            "mark, and encoding to ASCII with 'ignore' drops the marks, so 'Crème brûlée' "
            "becomes 'creme-brulee'. Lowercasing before the regex matters: the pattern only "
            "keeps a-z and digits.",
        ),
        explain_bad=(
            "Accents are stripped by the NFKD step, the regex replaces anything that is not a "
            "letter or digit with a dash, and the result is lowercased at the end."
        ),
        usage=">>> slugify(\"Crème Brûlée: A Recipe\")\n'creme-brulee-a-recipe'",
        rewrites=("Use python-slugify.", "slug = title.lower()"),
        renames=(("ascii_text", "plain"), ("normalized", "decomposed")),
    )


def _sql_names(r: random.Random) -> dict[str, str]:
    return {
        "customers": r.choice(("customers", "clients", "accounts")),
        "orders": r.choice(("orders", "purchases", "sales_orders")),
        "amount": r.choice(("total_amount", "amount", "order_total")),
        "date": r.choice(("created_at", "ordered_at", "placed_at")),
    }


def _spec_sql_top_customers(r: random.Random, year: int) -> _CodeSpec:
    n = _sql_names(r)
    top = r.choice((5, 10, 20))
    prompt = r.choice(
        (
            f"Write a SQL query that returns the top {top} customers by total order value in "
            f"{year}. Tables: {n['customers']}(id, name, country), {n['orders']}(id, "
            f"customer_id, {n['amount']}, {n['date']}).",
            f"Postgres: top {top} {n['customers']} by revenue for {year}? Orders are in "
            f"{n['orders']} with {n['amount']} and {n['date']}.",
        )
    )
    good = (
        f"SELECT c.id, c.name, SUM(o.{n['amount']}) AS revenue\n"
        f"FROM {n['customers']} AS c\n"
        f"JOIN {n['orders']} AS o ON o.customer_id = c.id\n"
        f"WHERE o.{n['date']} >= '{year}-01-01'\n"
        f"  AND o.{n['date']} < '{year + 1}-01-01'\n"
        "GROUP BY c.id, c.name\n"
        "ORDER BY revenue DESC\n"
        f"LIMIT {top};"
    )
    bad = (
        f"SELECT c.id, c.name, SUM(o.{n['amount']}) AS revenue\n"
        f"FROM {n['customers']} AS c\n"
        f"JOIN {n['orders']} AS o ON o.customer_id = c.id\n"
        f"WHERE o.{n['date']} BETWEEN '{year}-01-01' AND '{year}-12-31'\n"
        "GROUP BY c.id, c.name\n"
        "ORDER BY revenue\n"
        f"LIMIT {top};"
    )
    return _CodeSpec(
        lang="sql",
        prompt=prompt,
        good=(good,),
        bad=bad,
        explain_good=(
            "The half-open date range (>= 1 January, < 1 January of the next year) includes "
            f"orders placed at any time on 31 December, which BETWEEN with a date would miss "
            f"for timestamp columns. An index on {n['orders']}({n['date']}, customer_id) "
            "makes the filter fast.",
            "Grouping by both id and name keeps the query valid in strict SQL modes. If two "
            "customers tie at the cut-off, add c.id to the ORDER BY to make the result "
            "deterministic.",
        ),
        explain_bad=(
            "BETWEEN covers the whole year, and ordering by revenue puts the biggest "
            "customers first, so the LIMIT returns exactly the top customers."
        ),
        usage=None,
        rewrites=(f"SELECT * FROM v_top_{top};", "-- use the BI view"),  # noqa: S608
        renames=(("revenue", "total_revenue"), ("AS c", "AS cu")),
    )


def _spec_sql_no_orders(r: random.Random, year: int) -> _CodeSpec:
    n = _sql_names(r)
    prompt = r.choice(
        (
            f"SQL to find {n['customers']} who have never placed an order? Tables "
            f"{n['customers']}(id, name, email) and {n['orders']}(id, customer_id, ...).",
            f"I want a list of signed-up {n['customers']} without any {n['orders']} so that "
            "marketing can email them. Postgres.",
        )
    )
    good = (
        "SELECT c.id, c.name, c.email\n"
        f"FROM {n['customers']} AS c\n"
        f"LEFT JOIN {n['orders']} AS o ON o.customer_id = c.id\n"
        "WHERE o.id IS NULL\n"
        "ORDER BY c.name;"
    )
    good_exists = (  # sample answer text, never executed
        "SELECT c.id, c.name, c.email\n"  # noqa: S608
        f"FROM {n['customers']} AS c\n"
        "WHERE NOT EXISTS (\n"
        f"    SELECT 1 FROM {n['orders']} AS o WHERE o.customer_id = c.id\n"
        ")\n"
        "ORDER BY c.name;"
    )
    bad = (
        "SELECT c.id, c.name, c.email\n"
        f"FROM {n['customers']} AS c\n"
        f"JOIN {n['orders']} AS o ON o.customer_id = c.id\n"
        "WHERE o.id IS NULL\n"
        "ORDER BY c.name;"
    )
    return _CodeSpec(
        lang="sql",
        prompt=prompt,
        good=(good, good_exists),
        bad=bad,
        explain_good=(
            "The anti-join keeps every customer and only those without a matching order "
            "survive the IS NULL filter. NOT EXISTS expresses the same thing and usually gets "
            "the same plan; avoid NOT IN with a subquery, which returns nothing if any "
            "customer_id is NULL.",
        ),
        explain_bad=(
            "Joining the two tables and filtering on a missing order id returns exactly the "
            "customers who have never ordered."
        ),
        usage=None,
        rewrites=("-- see CRM export", "SELECT 1;"),
        renames=(("AS c", "AS cu"), ("AS o", "AS ord")),
    )


def _spec_sql_mau(r: random.Random, year: int) -> _CodeSpec:
    table = r.choice(("events", "page_views", "app_events"))
    ts = r.choice(("occurred_at", "created_at", "ts"))
    prompt = r.choice(
        (
            f"Monthly active users from an {table}(user_id, {ts}, name) table since the "
            f"start of {year}, Postgres please.",
            f"How do I count MAU per month in SQL? The table is {table} with user_id and {ts}.",
        )
    )
    good = (
        f"SELECT date_trunc('month', {ts}) AS month,\n"
        "       COUNT(DISTINCT user_id) AS active_users\n"
        f"FROM {table}\n"
        f"WHERE {ts} >= '{year}-01-01'\n"
        "GROUP BY 1\n"
        "ORDER BY 1;"
    )
    bad = (
        f"SELECT date_trunc('month', {ts}) AS month,\n"
        "       COUNT(user_id) AS active_users\n"
        f"FROM {table}\n"
        f"WHERE {ts} >= '{year}-01-01'\n"
        "GROUP BY 1\n"
        "ORDER BY 1;"
    )
    return _CodeSpec(
        lang="sql",
        prompt=prompt,
        good=(good,),
        bad=bad,
        explain_good=(
            "COUNT(DISTINCT user_id) counts each user once per month no matter how many "
            "events they produced. date_trunc returns a timestamp at the start of each month, "
            "which sorts and charts cleanly. For big tables, a daily rollup of distinct users "
            "keeps this query cheap.",
        ),
        explain_bad=(
            "Grouping by the truncated month and counting user_id gives the number of active "
            "users in each month."
        ),
        usage=None,
        rewrites=("-- MAU is on the dashboard", "SELECT 1;"),
        renames=(("active_users", "mau"), ("month,", "period,")),
    )


_CODE_CAVEATS = {
    "python": (
        "Add a unit test for the empty input and for a single element.",
        "Type hints make misuse visible in your editor and in mypy.",
        "If this runs on very large inputs, measure before optimising further.",
        "Avoid catching broad exceptions around this; let real errors surface.",
        "Keep the function pure (no I/O) so it stays easy to test.",
        "Document the behaviour for unusual input in the docstring.",
    ),
    "sql": (
        "Check the query plan with EXPLAIN ANALYZE on production-sized data.",
        "Make sure the join and filter columns are indexed.",
        "Time zones matter for date filters: store timestamps in UTC.",
        "NULLs in join columns behave differently from what most people expect.",
        "Wrap it in a view if several dashboards need the same numbers.",
        "Test the query on a day with no data to see what an empty result looks like.",
    ),
}


def _task_code(r: random.Random, today: date) -> _Task:
    year = today.year if today.month > 2 else today.year - 1
    builders: list[Callable[[random.Random], _CodeSpec]] = [
        _spec_dedupe,
        _spec_chunk,
        _spec_retry,
        _spec_moving_average,
        _spec_fix_count_words,
        _spec_slugify,
        lambda g: _spec_sql_top_customers(g, year),
        lambda g: _spec_sql_no_orders(g, year),
        lambda g: _spec_sql_mau(g, year),
    ]
    spec = r.choice(builders)(r)
    comment = "#" if spec.lang == "python" else "--"

    def render(g: random.Random, flaw: str | None) -> str:
        code = spec.bad if flaw == "buggy_code" else g.choice(spec.good)
        explanation = spec.explain_bad if flaw == "buggy_code" else g.choice(spec.explain_good)
        language = "Python" if spec.lang == "python" else "SQL"
        intro = g.choice(
            (
                "Here's one way to do it:",
                f"Sure! Here is the {language}:",
                "This should do what you need:",
                f"Here's a {language} version with a short explanation below.",
            )
        )
        parts = [intro, f"```{spec.lang}\n{code}\n```", explanation]
        if spec.usage and g.random() < 0.6:
            parts.append(f"Example:\n\n```{spec.lang}\n{spec.usage}\n```")
        if g.random() < 0.45:
            bank = _CODE_CAVEATS[spec.lang]
            parts.append("Things to keep in mind:\n" + _bullets(g, g.sample(bank, 3)))
        if g.random() < 0.3:
            parts.append(
                g.choice(
                    (
                        "Let me know if you want tests for this as well.",
                        "I can add type hints or docstrings in your project's style if needed.",
                        "If you share the surrounding code I can check how it fits in.",
                    )
                )
            )
        return "\n\n".join(parts)

    return _Task(
        feature="code",
        prompt=spec.prompt,
        render=render,
        flaws=("buggy_code", "buggy_code", "buggy_code", "truncated"),
        systems=(
            "You are a senior software engineer. Give working code first, then a short "
            "explanation.",
            "You are a helpful coding assistant inside an IDE. Prefer the standard library.",
        ),
        notes=(
            "Tested locally on Python 3.12 and Postgres 16.",
            "Reviewed in the team channel; keep in sync with the utils module.",
            "TODO: add a unit test for the empty input case.",
            "Note: this goes into the shared helpers package, so keep the signature stable.",
        ),
        inline_notes=(
            f"{comment} reviewed: handles empty input",
            f"{comment} keep this in sync with the docs",
            f"{comment} NOTE: hot path, keep it simple",
            f"{comment} TODO: add a test for this",
        ),
        renames=spec.renames,
        rewrites=spec.rewrites,
        completed_signals=("tests_passed", "tests_passed", "code_committed", "task_marked_done"),
        abandoned_signals=(*_ABANDON_SIGNALS, "tests_failed"),
        closers=("Let me know if you want tests for this as well.",),
    )


def _email_purpose(
    r: random.Random, cur: str
) -> tuple[str, str, Callable[[bool], tuple[str, list[str]]]]:
    """(instruction, short rewrite hint, body(wrong_facts) -> (subject, paragraphs))."""
    kind = r.randrange(6)
    if kind == 0:
        meeting = r.choice(("quarterly review", "project kickoff", "design review", "budget call"))
        d1, d2, d3 = r.sample(_WEEKDAYS, 3)
        time = r.choice(("9:30", "10:00", "11:00", "14:00", "15:30", "16:00"))
        instr = f"asking to move our {meeting} from {d1} to {d2} at {time}"

        def body(wrong: bool) -> tuple[str, list[str]]:
            day = d3 if wrong else d2
            return f"Rescheduling our {meeting}", [
                f"Would it be possible to move our {meeting} from {d1} to {day} at {time}? "
                "An unexpected conflict has come up on my side, and I want to make sure we "
                "have enough time to go through everything properly.",
                f"If {day} doesn't suit you, I'm also available on {d3 if not wrong else d2} "
                "morning. Apologies for the short notice, and thank you for your flexibility.",
            ]

        return instr, f"Can we do {d2} {time}?", body
    if kind == 1:
        invoice = f"INV-{r.randint(1000, 99999)}"
        amount = r.randint(400, 48000) + r.choice((0, 0.5, 0.99))
        due = f"{r.randint(1, 28)} {r.choice(_MONTHS)}"
        instr = f"reminding them that invoice {invoice} ({cur}{amount:,.2f}) due on {due} is unpaid"

        def body(wrong: bool) -> tuple[str, list[str]]:
            value = amount * 10 if wrong else amount
            return f"Invoice {invoice} — payment reminder", [
                f"I'm writing to follow up on invoice {invoice} for {cur}{value:,.2f}, which "
                f"was due on {due}. According to our records, we haven't received the "
                "payment yet.",
                "Could you please check with your accounts team and let me know when we can "
                "expect it? If the payment has already been made, please send over the "
                "remittance details so we can match it on our side.",
                "I've attached a copy of the invoice for convenience.",
            ]

        return instr, f"{invoice} still open?", body
    if kind == 2:
        project = r.choice(("the new customer portal", "the mobile app", "the data migration"))
        metric = r.choice(
            (
                f"{r.randint(2, 40)},000 sign-ups",
                f"a {r.randint(12, 60)}% drop in support tickets",
                f"{r.randint(90, 99)}% of users moved over without issues",
            )
        )
        instr = f"thanking them for their work on {project}, which launched last week"

        def body(wrong: bool) -> tuple[str, list[str]]:
            result = "a few problems" if wrong else metric
            return f"Thank you — {project} is live", [
                f"Now that {project} is live, I wanted to say thank you to you and the whole "
                "team for such a smooth collaboration.",
                f"The launch went better than we hoped: {result} in the first week, and the "
                "feedback from users has been very positive.",
                "We'd love to keep the momentum going. Would you be open to a short call in "
                "the next couple of weeks to discuss the next phase?",
            ]

        return instr, "Thanks, great launch!", body
    if kind == 3:
        service = r.choice(("the dashboard", "the public API", "file uploads", "login"))
        minutes = r.randint(12, 180)
        date = f"{r.randint(1, 28)} {r.choice(_MONTHS)}"
        hour = r.randint(6, 20)
        cause = r.choice(
            (
                ("an expired TLS certificate on one of our load balancers",
                 "automated certificate renewal and alerting"),
                ("a database failover that did not complete cleanly",
                 "tested the failover procedure again and added a health check"),
                ("a configuration change that was rolled out too broadly",
                 "introduced staged roll-outs for configuration changes"),
            )
        )  # fmt: skip
        instr = f"telling customers that {service} was down for {minutes} minutes on {date}"

        def body(wrong: bool) -> tuple[str, list[str]]:
            mins = minutes // 3 if wrong else minutes
            end = hour + (mins + 59) // 60
            return f"Service disruption on {date}", [
                f"On {date}, {service} was unavailable for approximately {mins} minutes "
                f"between {hour}:00 and {end}:00 UTC. We're sorry for the disruption this "
                "caused to your work.",
                f"The root cause was {cause[0]}. Our team restored service and has since "
                f"{cause[1]}.",
                "No data was lost. If you notice anything unusual in your account, please "
                "reply to this email and we'll look into it straight away.",
            ]

        return instr, f"Sorry about {date}.", body
    if kind == 4:
        amount = r.randint(3, 90) * 500
        item = r.choice(
            ("new laptops for the support team", "a CI build cluster", "a design tool licence",
             "a two-day security training")
        )  # fmt: skip
        months = r.randint(4, 18)
        deadline = f"{r.choice(_WEEKDAYS)} {r.randint(1, 28)} {r.choice(_MONTHS)}"
        instr = f"asking for approval of {cur}{amount:,} for {item} by {deadline}"

        def body(wrong: bool) -> tuple[str, list[str]]:
            value = amount // 10 if wrong else amount
            return f"Budget request: {item}", [
                f"I'd like to request approval for a budget of {cur}{value:,} for {item}.",
                "The current setup is slowing the team down every week, and we've had to work "
                f"around it several times this quarter. Based on the quotes we've received, "
                f"this should pay for itself within {months} months.",
                f"If possible, I'd appreciate a decision by {deadline} so that we can place the "
                "order before prices change at the end of the quarter.",
            ]

        return instr, "Approve pls?", body
    thing = r.choice(("a managed analytics platform", "office cleaning", "a new CRM"))
    instr = f"politely declining their proposal for {thing}"

    def body(wrong: bool) -> tuple[str, list[str]]:
        decision = (
            "we'd like to go ahead with a small pilot"
            if wrong
            else "we've decided not to move forward at this stage"
        )
        return f"Your proposal for {thing}", [
            f"Thank you for sending over your proposal for {thing} and for taking the time to "
            "walk us through it last week.",
            f"After careful consideration, {decision}. The solution is impressive, but it "
            "doesn't fit our current budget and priorities.",
            "We'd be happy to stay in touch and revisit this next year. Thanks again for your "
            "time and effort.",
        ]

    return instr, "No thanks, maybe 2027.", body


def _task_email(r: random.Random, today: date, sender: str) -> _Task:
    first, last = r.choice(_FIRST), r.choice(_LAST)
    role, company = r.choice(_ROLES), r.choice(_COMPANIES)
    cur = r.choice(_CURRENCIES)
    tone = r.choice(("formal", "friendly", "friendly but professional", "short and polite"))
    instr, hint, body = _email_purpose(r, cur)
    prompt = r.choice(
        (
            f"Draft a {tone} email to {first} {last}, {role} at {company}, {instr}.",
            f"Write an email to {first} ({role}, {company}) {instr}. Tone: {tone}.",
            f"Can you help me write a {tone} email? It's to {first} {last} at {company}, "
            f"{instr}. Sign it {sender}.",
        )
    )
    formal = tone == "formal"
    sender_role = r.choice(("Operations Manager", "Team Lead", "Account Director", "Founder"))
    sender_company = r.choice(_COMPANIES)
    sender_phone = f"+44 20 7946 {r.randint(1000, 9999)}"

    def render(g: random.Random, flaw: str | None) -> str:
        subject, paragraphs = body(flaw == "wrong_facts")
        casual = (flaw == "wrong_tone") != (not formal and g.random() < 0.2)
        if flaw == "wrong_tone" and formal:
            greeting = g.choice((f"Hey {first}!!", f"Yo {first},", f"Hiya {first} 👋"))
            opener = g.choice(("Hope you're crushing it!", "Quick one for ya 😊"))
            signoff = g.choice(("Cheers!!", "Laters,", "xx"))
        elif flaw == "wrong_tone":
            greeting = f"Dear Mr./Ms. {last},"
            opener = "Please be advised that this matter requires your immediate attention."
            signoff = "Yours faithfully,"
            paragraphs = [*paragraphs, "Failure to respond promptly will be escalated."]
        elif formal or not casual:
            greeting = g.choice((f"Dear {first} {last},", f"Dear {first},"))
            opener = g.choice(("I hope this message finds you well.", "I hope you are well."))
            signoff = g.choice(("Kind regards,", "Best regards,", "Sincerely,"))
        else:
            greeting = g.choice((f"Hi {first},", f"Hello {first},"))
            opener = g.choice(("I hope you're doing well.", "Hope your week is going well!"))
            signoff = g.choice(("Best,", "Thanks,", "Many thanks,"))
        if g.random() < 0.4:
            paragraphs = [
                *paragraphs,
                g.choice(
                    (
                        "In the meantime, please don't hesitate to reach out if you have any "
                        "questions or if there is anything I can prepare in advance.",
                        "I've also let the rest of the team know, so nobody is caught by "
                        "surprise. I'll send a short summary once everything is confirmed.",
                        "I know this is a busy time of year for everyone, so I really "
                        "appreciate you looking into it.",
                    )
                ),
            ]
        signature = f"{signoff}\n{sender}"
        if g.random() < 0.5:
            signature += f"\n{sender_role}, {sender_company}\n{sender_phone}"
        lines = [f"Subject: {subject}", greeting, opener, *paragraphs, signature]
        return "\n\n".join(lines)

    return _Task(
        feature="email",
        prompt=prompt,
        render=render,
        flaws=("wrong_tone", "wrong_tone", "wrong_facts", "wrong_facts", "truncated"),
        systems=(
            "You are an assistant that drafts clear, professional emails.",
            f"You write emails on behalf of {sender}. Match the requested tone.",
        ),
        notes=(
            "P.S. I've attached the agenda for reference.",
            "Happy to jump on a quick call if that's easier.",
            f"Please copy {r.choice(_FIRST)} from our finance team on your reply.",
            "Thanks again for your patience with all of this.",
            "I'm out of the office on Friday, so Thursday would be ideal.",
        ),
        rewrites=(hint, f"Thanks {first}! {sender.split()[0]}", "Call me?"),
        completed_signals=("email_sent", "email_sent", "task_marked_done"),
        closers=("P.S. Let me know if anything is unclear.",),
    )


_TRANSLATIONS: dict[str, tuple[dict[str, str], ...]] = {
    "office": (
        {
            "en": "The office will be closed on Friday for the annual maintenance of the "
            "heating system.",
            "fr": "Le bureau sera fermé vendredi pour l'entretien annuel du système de chauffage.",
            "de": "Das Büro bleibt am Freitag wegen der jährlichen Wartung der Heizungsanlage "
            "geschlossen.",
            "es": "La oficina estará cerrada el viernes por el mantenimiento anual del sistema "
            "de calefacción.",
        },
        {
            "en": "Please take your laptops home on Thursday evening and work remotely on Friday.",
            "fr": "Veuillez emporter vos ordinateurs portables chez vous jeudi soir et "
            "travailler à distance vendredi.",
            "de": "Bitte nehmen Sie Ihre Laptops am Donnerstagabend mit nach Hause und arbeiten "
            "Sie am Freitag von zu Hause aus.",
            "es": "Por favor, llévense sus portátiles a casa el jueves por la tarde y trabajen "
            "en remoto el viernes.",
        },
        {
            "en": "The meeting rooms on the second floor will be available again from Monday "
            "morning.",
            "fr": "Les salles de réunion du deuxième étage seront de nouveau disponibles à "
            "partir de lundi matin.",
            "de": "Die Besprechungsräume im zweiten Stock stehen ab Montagmorgen wieder zur "
            "Verfügung.",
            "es": "Las salas de reuniones de la segunda planta volverán a estar disponibles a "
            "partir del lunes por la mañana.",
        },
        {
            "en": "If you have any questions, please contact the facilities team.",
            "fr": "Si vous avez des questions, veuillez contacter l'équipe des services généraux.",
            "de": "Bei Fragen wenden Sie sich bitte an das Facility-Team.",
            "es": "Si tienen alguna pregunta, pónganse en contacto con el equipo de servicios "
            "generales.",
        },
        {
            "en": "Thank you for your understanding and have a good weekend.",
            "fr": "Merci de votre compréhension et bon week-end.",
            "de": "Vielen Dank für Ihr Verständnis und ein schönes Wochenende.",
            "es": "Gracias por su comprensión y que tengan un buen fin de semana.",
        },
    ),
    "product": (
        {
            "en": "Our new version makes it easier to share reports with your whole team.",
            "fr": "Notre nouvelle version facilite le partage des rapports avec toute votre "
            "équipe.",
            "de": "Mit unserer neuen Version können Sie Berichte noch einfacher mit Ihrem "
            "gesamten Team teilen.",
            "es": "Nuestra nueva versión facilita compartir informes con todo su equipo.",
        },
        {
            "en": "You can now export any dashboard as a PDF with a single click.",
            "fr": "Vous pouvez désormais exporter n'importe quel tableau de bord en PDF en un "
            "seul clic.",
            "de": "Sie können jetzt jedes Dashboard mit einem einzigen Klick als PDF exportieren.",
            "es": "Ahora puede exportar cualquier panel a PDF con un solo clic.",
        },
        {
            "en": "We have also improved loading times for large projects by up to forty percent.",
            "fr": "Nous avons également réduit les temps de chargement des grands projets "
            "jusqu'à quarante pour cent.",
            "de": "Außerdem haben wir die Ladezeiten großer Projekte um bis zu vierzig Prozent "
            "verkürzt.",
            "es": "También hemos mejorado los tiempos de carga de los proyectos grandes hasta "
            "en un cuarenta por ciento.",
        },
        {
            "en": "The update will be rolled out to all customers over the next two weeks.",
            "fr": "La mise à jour sera déployée auprès de tous les clients au cours des deux "
            "prochaines semaines.",
            "de": "Das Update wird in den nächsten zwei Wochen für alle Kunden bereitgestellt.",
            "es": "La actualización se implementará para todos los clientes durante las "
            "próximas dos semanas.",
        },
        {
            "en": "As always, we would love to hear your feedback.",
            "fr": "Comme toujours, nous serions ravis d'avoir votre avis.",
            "de": "Wie immer freuen wir uns über Ihr Feedback.",
            "es": "Como siempre, nos encantaría conocer su opinión.",
        },
    ),
    "travel": (
        {
            "en": "Your train to the conference leaves at 8:15 from platform 4.",
            "fr": "Votre train pour la conférence part à 8 h 15 du quai 4.",
            "de": "Ihr Zug zur Konferenz fährt um 8:15 Uhr von Gleis 4 ab.",
            "es": "Su tren a la conferencia sale a las 8:15 del andén 4.",
        },
        {
            "en": "The hotel is a ten-minute walk from the station, and breakfast is included.",
            "fr": "L'hôtel se trouve à dix minutes à pied de la gare, et le petit-déjeuner est "
            "inclus.",
            "de": "Das Hotel ist zehn Gehminuten vom Bahnhof entfernt, und das Frühstück ist "
            "inbegriffen.",
            "es": "El hotel está a diez minutos a pie de la estación y el desayuno está incluido.",
        },
        {
            "en": "Please keep all receipts so that we can reimburse your expenses.",
            "fr": "Veuillez conserver tous vos reçus afin que nous puissions rembourser vos frais.",
            "de": "Bitte bewahren Sie alle Belege auf, damit wir Ihre Ausgaben erstatten können.",
            "es": "Por favor, guarde todos los recibos para que podamos reembolsarle los gastos.",
        },
        {
            "en": "The first session starts at ten o'clock in the main hall.",
            "fr": "La première session commence à dix heures dans la grande salle.",
            "de": "Die erste Sitzung beginnt um zehn Uhr im großen Saal.",
            "es": "La primera sesión empieza a las diez en la sala principal.",
        },
        {
            "en": "Let us know as soon as possible if your plans change.",
            "fr": "Prévenez-nous dès que possible si vos projets changent.",
            "de": "Geben Sie uns bitte so bald wie möglich Bescheid, falls sich Ihre Pläne ändern.",
            "es": "Avísenos lo antes posible si cambian sus planes.",
        },
    ),
    "support": (
        {
            "en": "We're sorry to hear that your order arrived damaged.",
            "fr": "Nous sommes désolés d'apprendre que votre commande est arrivée endommagée.",
            "de": "Es tut uns leid zu hören, dass Ihre Bestellung beschädigt angekommen ist.",
            "es": "Lamentamos saber que su pedido llegó dañado.",
        },
        {
            "en": "A replacement has been sent today and should reach you within three working "
            "days.",
            "fr": "Un produit de remplacement a été envoyé aujourd'hui et devrait vous parvenir "
            "sous trois jours ouvrés.",
            "de": "Ein Ersatz wurde heute verschickt und sollte innerhalb von drei Werktagen "
            "bei Ihnen eintreffen.",
            "es": "Hoy le hemos enviado un reemplazo que debería llegarle en un plazo de tres "
            "días hábiles.",
        },
        {
            "en": "You do not need to return the damaged item.",
            "fr": "Vous n'avez pas besoin de renvoyer l'article endommagé.",
            "de": "Sie müssen den beschädigten Artikel nicht zurücksenden.",
            "es": "No es necesario que devuelva el artículo dañado.",
        },
        {
            "en": "We have also added a discount code to your account for your next purchase.",
            "fr": "Nous avons également ajouté un code de réduction à votre compte pour votre "
            "prochain achat.",
            "de": "Außerdem haben wir Ihrem Konto einen Rabattcode für Ihren nächsten Einkauf "
            "gutgeschrieben.",
            "es": "También hemos añadido a su cuenta un código de descuento para su próxima "
            "compra.",
        },
        {
            "en": "Thank you for your patience.",
            "fr": "Merci de votre patience.",
            "de": "Vielen Dank für Ihre Geduld.",
            "es": "Gracias por su paciencia.",
        },
    ),
}
_LANGUAGES = {"fr": "French", "de": "German", "es": "Spanish"}
_LANGUAGE_NOTES = {
    "fr": ("Cordialement,\nL'équipe", "N'hésitez pas à nous contacter.", "Bonne journée !"),
    "de": ("Mit freundlichen Grüßen\nIhr Team", "Melden Sie sich gern bei uns.", "Schönen Tag!"),
    "es": ("Saludos cordiales,\nEl equipo", "No dude en contactarnos.", "¡Que tenga un buen día!"),
}
_LANGUAGE_REWRITES = {
    "fr": ("Voir la version jointe.", "Merci !", "OK, reçu."),
    "de": ("Siehe Anhang.", "Danke!", "OK, erhalten."),
    "es": ("Ver el adjunto.", "¡Gracias!", "OK, recibido."),
}


def _task_translate(r: random.Random, today: date) -> _Task:
    group = r.choice(sorted(_TRANSLATIONS))
    sentences = list(_TRANSLATIONS[group])
    keep = sorted(r.sample(range(1, len(sentences)), r.randint(2, len(sentences) - 1)))
    if r.random() < 0.3:  # a longer message: two groups
        other = r.choice([name for name in sorted(_TRANSLATIONS) if name != group])
        sentences += list(_TRANSLATIONS[other])
        keep += list(range(len(sentences) - 5, len(sentences)))
    chosen = [sentences[0]] + [sentences[i] for i in keep]
    lang = r.choice(sorted(_LANGUAGES))
    language = _LANGUAGES[lang]
    source = " ".join(s["en"] for s in chosen)
    prompt = r.choice(
        (
            f"Translate into {language}:\n\n{source}",
            f"Can you translate this message into {language}? Keep it formal.\n\n{source}",
            f"{language} version of this please:\n\n{source}",
        )
    )

    def render(g: random.Random, flaw: str | None) -> str:
        target = lang
        if flaw == "wrong_language":
            target = g.choice([code for code in sorted(_LANGUAGES) if code != lang])
        parts = [s[target] for s in chosen]
        if flaw == "untranslated":
            for i in g.sample(range(len(parts)), max(1, len(parts) // 3)):
                parts[i] = chosen[i]["en"]
        text = " ".join(parts) if g.random() < 0.6 else "\n\n".join(parts)
        if g.random() < 0.5 or len(text) < 240:
            text = f"Here is the {_LANGUAGES[target]} translation:\n\n{text}"
        if g.random() < 0.35:
            register = {"fr": "vous", "de": "Sie", "es": "usted"}[target]
            text += (
                f"\n\nNote: I used the formal '{register}' form, which suits a message to "
                "colleagues or customers."
            )
        if g.random() < 0.25:
            text += (
                "\n\nI kept proper nouns, times and numbers as they are and used the "
                "usual terms for an office or customer notice rather than a word-for-word "
                "rendering, so it reads naturally to a native speaker."
            )
        return text

    return _Task(
        feature="translate",
        prompt=prompt,
        render=render,
        flaws=("wrong_language", "untranslated", "untranslated", "truncated"),
        systems=(f"You are a professional translator. Translate into {language} faithfully.",),
        notes=_LANGUAGE_NOTES[lang],
        rewrites=_LANGUAGE_REWRITES[lang],
        completed_signals=("document_saved", "task_marked_done"),
        closers=(
            "Let me know if you'd like a less formal version or a different regional variant.",
        ),
    )


_SUPPORT_BACKGROUND = (
    "Reset emails are sometimes held back by corporate spam filters, especially the first "
    "time they come from a new sender. Requesting a second link invalidates the first one, "
    "so always use the most recent email.",
    "Your invoices are listed under Settings → Billing → Invoices, and the next invoice will "
    "show the prorated amount as a separate line so it is easy to reconcile.",
    "Exports are consistent snapshots: changes made while the export is running appear in "
    "the next export, not this one. Very large workspaces are split into several files.",
    "Limits are counted per workspace, not per API key, so integrations running at the same "
    "time share one budget. The X-RateLimit-Remaining and X-RateLimit-Reset response headers "
    "show where you stand.",
    "If an invitation doesn't arrive, ask your colleague to check their spam folder, or copy "
    "the invite link from the Members page and send it to them directly.",
)


def _task_support(r: random.Random, today: date) -> _Task:
    product = r.choice(("Acme Cloud", "Nimbus Drive", "Ledgerly", "TaskHarbor", "Pipewell"))
    domain = product.lower().replace(" ", "") + ".com"
    customer = r.choice(_FIRST)
    topic = r.randrange(5)
    if topic == 0:
        hours = r.choice((1, 2, 24))
        question = r.choice(
            (
                f"I can't log in to {product}: I forgot my password and the reset email never "
                "arrives. What should I do?",
                f"How do I reset my {product} password? The link in the email says it has expired.",
            )
        )

        def steps(wrong: bool) -> list[str]:
            first = (
                "Open **Settings → Security → Reset password** in the app."
                if wrong
                else f"Go to the {product} sign-in page and click **Forgot password?**."
            )
            valid = f"{hours * 3} days" if wrong else f"{hours} hour{'s' if hours > 1 else ''}"
            return [
                first,
                f"Enter the email address you use for {product}. We'll send you a reset link "
                f"that stays valid for {valid}.",
                "If the email doesn't arrive within 5 minutes, check your spam folder and make "
                f"sure messages from {domain} aren't blocked.",
                "If your company signs in with SSO, your password is managed by your identity "
                "provider, so please contact your IT team instead.",
            ]

    elif topic == 1:
        plan = r.choice(("Team", "Business", "Pro"))
        question = f"How do I switch our workspace to the {plan} plan, and what happens to billing?"

        def steps(wrong: bool) -> list[str]:
            down = (
                "Downgrades take effect immediately and the unused balance is refunded."
                if wrong
                else "Downgrades take effect at the end of the current billing period, so you "
                "keep your current features until then."
            )
            return [
                "Open **Settings → Billing** and click **Change plan**.",
                f"Pick the {plan} plan and confirm. Upgrades take effect immediately and you're "
                "charged a prorated amount for the rest of the billing period.",
                down,
                "Only workspace owners and billing admins can change the plan.",
            ]

    elif topic == 2:
        minutes = r.choice((10, 15, 30))
        question = r.choice(
            (
                f"Is there a way to export all our data from {product}? We need a backup.",
                f"How can I download everything from {product} as CSV?",
            )
        )

        def steps(wrong: bool) -> list[str]:
            scope = (
                "Exports include everything, including uploaded files."
                if wrong
                else "Exports include projects, tasks and comments, but not uploaded files; "
                "those can be downloaded per project from the **Files** tab."
            )
            return [
                "Go to **Settings → Data → Export** and choose CSV or JSON.",
                "Small exports download right away; larger ones are prepared in the background "
                f"and we email you a link, usually within {minutes} minutes.",
                "The download link expires after 7 days.",
                scope,
            ]

    elif topic == 3:
        plan, limit = r.choice((("Starter", 60), ("Team", 300), ("Business", 1200)))
        question = (
            f"We keep getting errors from the {product} API when we sync. Are there rate "
            f"limits on the {plan} plan?"
        )

        def steps(wrong: bool) -> list[str]:
            value = limit * 10 if wrong else limit
            status = "**HTTP 503**" if wrong else "**HTTP 429**"
            return [
                f"On the {plan} plan the API allows {value} requests per minute per workspace.",
                f"When you go over the limit the API returns {status} with a `Retry-After` "
                "header that tells you how many seconds to wait.",
                "We recommend retrying with exponential backoff and caching responses that "
                "don't change often.",
                "If you need a higher limit, contact sales for a custom quota.",
            ]

    else:
        days = r.choice((7, 14, 30))
        question = f"How do I add my colleagues to our {product} workspace?"

        def steps(wrong: bool) -> list[str]:
            guests = (
                "Guests use a paid seat like everyone else."
                if wrong
                else "Guests are free and only see the projects you share with them."
            )
            return [
                "Open **Settings → Members** and click **Invite people**.",
                "Enter their email addresses (comma separated) and pick a role: Member, Admin "
                "or Guest.",
                f"Invitations are valid for {days} days; you can resend them from the same page.",
                f"Each member uses a seat on your plan. {guests}",
            ]

    prompt = r.choice(
        (
            f"Customer message:\n\n{question}\n\nWrite a reply.",
            f"Draft an answer to this support ticket from {customer}: {question}",
            question,
        )
    )

    def render(g: random.Random, flaw: str | None) -> str:
        items = steps(flaw == "wrong_facts")
        numbered = "\n".join(f"{i}. {step}" for i, step in enumerate(items, start=1))
        if flaw == "wrong_tone":
            return (
                f"{customer},\n\nAs explained in our documentation, the steps are:\n\n"
                f"{numbered}\n\nPlease read the help center before contacting support. This "
                "ticket will now be closed."
            )
        greeting = g.choice((f"Hi {customer},", "Hi there,", f"Hello {customer},"))
        empathy = g.choice(
            (
                "Thanks for reaching out, happy to help with that.",
                "Sorry for the trouble! Here's how to sort it out:",
                "Good question. Here's what to do:",
            )
        )
        closing = g.choice(
            (
                "Let me know if anything is unclear and I'll be glad to help.",
                "Hope this helps! If you still get stuck, reply here with a screenshot and "
                "we'll take a look.",
                f"Have a great day,\nThe {product} support team",
            )
        )
        extra = f"\n\n{_SUPPORT_BACKGROUND[topic]}" if g.random() < 0.5 else ""
        return f"{greeting}\n\n{empathy}\n\n{numbered}{extra}\n\n{closing}"

    return _Task(
        feature="support",
        prompt=prompt,
        render=render,
        flaws=("wrong_facts", "wrong_facts", "wrong_tone", "truncated"),
        systems=(
            f"You are a friendly support agent for {product}. Only state documented facts.",
            f"You answer customer questions about {product}. Be concise and kind.",
        ),
        notes=(
            "You can also reach us on live chat from the Help menu.",
            "I've added a note to your account so the team knows the context.",
            f"Our status page at status.{domain} shows any ongoing incidents.",
            "If this is urgent, reply with URGENT in the subject and we'll prioritise it.",
        ),
        rewrites=("Escalated to tier 2.", "Call us at ext. 4410.", "Fixed on our side, sorry!"),
        completed_signals=("ticket_resolved", "ticket_resolved", "task_marked_done"),
        closers=("Let me know if anything is unclear and I'll be glad to help.",),
    )


_IDEAS: dict[str, tuple[tuple[str, str], ...]] = {
    "ways to reduce churn for our {x} app": (
        ("Onboarding checklist", "guide new users to their first success in the first session"),
        ("Win-back emails", "contact people inactive for 14 days with a personalised tip"),
        ("Pause instead of cancel", "let subscribers pause for a month rather than cancel"),
        ("Exit survey", "ask one question at cancellation to learn why people really leave"),
        ("Progress milestones", "celebrate streaks so users see the value they're getting"),
        ("Annual plan discount", "offer a discount for yearly billing to reduce monthly churn"),
        ("In-app support chat", "answer questions before frustration turns into cancellation"),
        ("Feature of the week", "surface one unused feature that fits how the user works"),
        ("Health score", "flag accounts with declining activity and reach out early"),
        ("Community challenges", "monthly challenges give people a reason to come back"),
        ("Smarter reminders", "send fewer, better-timed notifications based on usage"),
    ),
    "team offsite activities for a team of {n}": (
        ("Cooking class", "everyone cooks one course together, then shares the meal"),
        ("Escape room", "a good mix of communication and problem solving in an hour"),
        ("Mini hackathon", "small mixed groups build something fun in an afternoon"),
        ("Guided hike", "low-key, outdoors, and plenty of time for real conversation"),
        ("Volunteering morning", "help a local charity, then debrief over lunch"),
        ("Retrospective workshop", "look back at the year and agree on three changes"),
        ("Board game tournament", "easy to organise and inclusive of different energy levels"),
        ("Lightning talks", "five-minute talks on anything people are passionate about"),
        ("Photo scavenger hunt", "teams explore the city with a list of odd things to find"),
        ("Pottery workshop", "hands-on, relaxing, and everyone takes something home"),
    ),
    "blog post ideas about {x}": (
        ("A beginner's guide to {x}", "the basics, with a checklist readers can follow"),
        ("Five myths about {x}", "correct common misconceptions with real examples"),
        ("How we changed our approach to {x}", "an honest story with before/after numbers"),
        ("What our customers taught us about {x}", "quotes and lessons from interviews"),
        ("The tools we use for {x}", "a practical stack overview with pros and cons"),
        ("A {x} checklist for small teams", "a printable one-pager for busy teams"),
        ("What we got wrong about {x}", "a candid post-mortem people will share"),
        ("A year of {x} in numbers", "charts and metrics from the past twelve months"),
        ("Ask the expert: {x} Q&A", "answer the ten questions readers ask most often"),
        ("{x} in five years", "predictions, with a follow-up post planned to check them"),
    ),
    "names for a {x}": (
        ("Tidal", "short, easy to spell and suggests something that flows naturally"),
        ("Sprout", "friendly and suggests growth; works well as an app icon"),
        ("Northstar", "implies guidance and direction; memorable"),
        ("Kindle & Co", "warm and approachable, though check the trademark"),
        ("Loop", "simple and hints at habits and repetition"),
        ("Beacon", "suggests clarity and visibility"),
        ("Pebble", "small, tactile and friendly"),
        ("Atlas", "conveys structure and breadth"),
        ("Fathom", "suggests depth and understanding"),
        ("Nudge", "playful, and says what the product does"),
    ),
    "ways to cut our cloud bill": (
        ("Right-size instances", "most VMs run below 30% CPU; move them to smaller types"),
        ("Scale dev to zero", "shut down non-production environments at night and weekends"),
        ("Savings plans", "commit to steady baseline usage for a large discount"),
        ("Clean up storage", "delete unattached volumes and snapshots older than 90 days"),
        ("Cold storage tiers", "move rarely read data to cheaper storage classes"),
        ("Budgets and alerts", "give each team a budget and alert at 80% of it"),
        ("Tag everything", "cost allocation tags show which team spends what"),
        ("Spot instances", "run batch and CI jobs on interruptible capacity"),
        ("Cache more", "a CDN and response caching cut egress and compute"),
        ("Shorter log retention", "keep detailed logs for 14 days and aggregates longer"),
    ),
}
_IDEA_FILLS = {
    "{x} app": ("meal-planning", "budgeting", "language-learning", "fitness"),
    "{n}": ("8", "12", "25", "40"),
    "about {x}": ("remote work", "data privacy", "cloud costs", "developer productivity"),
    "a {x}": ("smart water bottle", "project management tool", "plant-care app", "budgeting app"),
}
_GENERIC_IDEAS = (
    ("Improve the product", "make it better so people like it more"),
    ("Do more marketing", "more marketing usually helps"),
    ("Listen to users", "users know what they want"),
    ("Be innovative", "think outside the box"),
    ("Use AI", "AI can help with many things"),
    ("Work harder", "more effort from everyone will pay off"),
)


def _task_brainstorm(r: random.Random, today: date) -> _Task:
    topic = r.choice(sorted(_IDEAS))
    fill = ""
    for key, values in _IDEA_FILLS.items():
        if key in topic:
            fill = r.choice(values)
    phrase = topic.replace("{x}", fill).replace("{n}", fill)
    ideas = [(t.replace("{x}", fill), e.replace("{x}", fill)) for t, e in _IDEAS[topic]]
    ideas = [(t[0].upper() + t[1:], e) for t, e in ideas]
    count = r.randint(5, min(8, len(ideas)))
    prompt = r.choice(
        (
            f"Give me {count} {phrase}.",
            f"Brainstorm {count} {phrase}, one line each.",
            f"I need some {phrase}. {count} options with a short reason for each, please.",
        )
    )

    def render(g: random.Random, flaw: str | None) -> str:
        picked = g.sample(ideas, count)
        if flaw == "too_few":
            picked = picked[: max(2, count // 2)]
        elif flaw == "generic":
            generic = g.sample(_GENERIC_IDEAS, count // 2 + 1)
            picked = picked[: count - len(generic)] + generic
        elif flaw == "repetitive":
            base = picked[: (count + 1) // 2]
            again = [(f"{g.choice(('Another', 'Similar', 'More'))}: {t}", e) for t, e in base]
            picked = (base + again)[:count]
        lines = [f"{i}. **{t}** — {e}." for i, (t, e) in enumerate(picked, start=1)]
        intro = g.choice(
            (f"Here are {count} {phrase}:", f"Sure, {count} ideas:", "A few options to consider:")
        )
        closing = g.choice(
            (
                "Happy to expand on any of these.",
                "If you tell me more about your budget and timeline, I can narrow this down.",
                "",
            )
        )
        text = intro + "\n\n" + "\n".join(lines)
        if flaw is None and len(picked) >= 3 and g.random() < 0.45:
            a, b = g.sample(range(len(picked)), 2)
            text += (
                f"\n\nIf I had to pick, I'd start with {picked[a][0].lower()} and "
                f"{picked[b][0].lower()}: both are cheap to try, you'll know within a few "
                "weeks whether they work, and they don't depend on each other."
            )
        return f"{text}\n\n{closing}" if closing else text

    return _Task(
        feature="brainstorm",
        prompt=prompt,
        render=render,
        flaws=("too_few", "generic", "generic", "repetitive", "truncated"),
        systems=("You are a creative assistant. Offer varied, concrete ideas.",),
        notes=(
            "Shortlist for Thursday: ideas 1 and 3.",
            "We tried a version of the second one last year; check with the team first.",
            "Budget: keep it under 2k.",
            f"To discuss at the planning meeting in {r.choice(_MONTHS)}.",
        ),
        rewrites=("Go with idea 2.", "Skip, do a retro.", "Ask team Monday."),
        completed_signals=("task_marked_done",),
        closers=("Happy to expand on any of these.",),
    )


_ITEMS = (
    ("USB-C charger", 19.99), ("wireless mouse", 24.50), ("laptop stand", 39.00),
    ("HDMI cable", 9.99), ("noise-cancelling headphones", 129.00), ("mechanical keyboard", 89.00),
    ("desk lamp", 34.90), ("webcam", 59.00), ("monitor arm", 74.00),
)  # fmt: skip


def _task_extract(r: random.Random, today: date) -> _Task:
    first, last = r.choice(_FIRST), r.choice(_LAST)
    host = r.choice(("example.com", "mail.test", "corp.example"))
    email = f"{first.lower()}.{last.lower().replace(chr(39), '')}@{host}"
    order_id = f"{r.choice(('A', 'B', 'W'))}{r.randint(100000, 999999)}"
    ordered = today - timedelta(days=r.randint(2, 45))
    year, month, day = ordered.year, ordered.month, ordered.day
    items = r.sample(_ITEMS, r.randint(1, 3))
    quantities = [r.choice((1, 1, 1, 2, 3)) for _ in items]
    cur_code, cur_sign = r.choice((("EUR", "€"), ("USD", "$"), ("GBP", "£")))
    total = round(sum(price * q for (_, price), q in zip(items, quantities, strict=True)), 2)
    phone = f"+{r.choice((44, 49, 33, 1))} {r.randint(100, 999)} {r.randint(1000000, 9999999)}"
    spoken = " and ".join(
        f"{q} x {name}" if q > 1 else f"a {name}"
        for (name, _), q in zip(items, quantities, strict=True)
    )
    date_text = r.choice(
        (f"{_MONTHS[month - 1]} {day}, {year}", f"{day} {_MONTHS[month - 1]} {year}")
    )
    message = r.choice(
        (
            f"Hi, this is {first} {last}. My order {order_id} placed on {date_text} still "
            f"hasn't arrived. I paid {cur_sign}{total:.2f} for {spoken}. You can reach me at "
            f"{email} or {phone}.",
            f"Hello support team,\n\nI ordered {spoken} on {date_text} (order number "
            f"{order_id}, total {cur_sign}{total:.2f}) but received the wrong item. Please "
            f"contact me at {email}.\n\nThanks,\n{first} {last}",
            f"Order {order_id} — {first} {last} ({email}, {phone}) wants to return {spoken}. "
            f"Ordered {date_text}, paid {total:.2f} {cur_code}.",
        )
    )
    prompt = r.choice(
        (
            "Extract customer_name, email, order_id, order_date (YYYY-MM-DD), total, currency "
            f"and items (name, quantity) as JSON.\n\n{message}",
            f"Turn this message into JSON for our ticket system (customer_name, email, "
            f"order_id, order_date, total, currency, items):\n\n{message}",
        )
    )
    data: dict[str, Any] = {
        "customer_name": f"{first} {last}",
        "email": email,
        "order_id": order_id,
        "order_date": f"{year}-{month:02d}-{day:02d}",
        "total": total,
        "currency": cur_code,
        "items": [
            {"name": name, "quantity": q} for (name, _), q in zip(items, quantities, strict=True)
        ],
    }

    def render(g: random.Random, flaw: str | None) -> str:
        obj = copy.deepcopy(data)
        if flaw == "wrong_value":
            if g.random() < 0.5:
                obj["total"] = round(total * g.choice((0.5, 2, 10)), 2)
            else:
                swapped = f"{year}-{day:02d}-{month:02d}"  # day and month mixed up
                obj["order_date"] = swapped if day <= 12 else f"{year - 1}-{month:02d}-{day:02d}"
            obj["items"][0]["quantity"] += 1
        elif flaw == "missing_field":
            for key in g.sample(("email", "items", "currency", "order_date"), 2):
                del obj[key]
        body = json.dumps(obj, indent=2, ensure_ascii=False)
        if flaw == "invalid_json":
            body = body.replace('"currency"', "currency").replace(
                f'"{cur_code}"\n', f"'{cur_code}',\n"
            )
        if g.random() < 0.5:
            body = f"```json\n{body}\n```"
        if g.random() < 0.35:
            body += "\n\nNotes:\n" + _bullets(
                g,
                [
                    "The order date is converted to ISO 8601 (YYYY-MM-DD).",
                    "The total is taken as written in the message, not recomputed.",
                    f"Currency is given as an ISO 4217 code ({cur_code}).",
                ],
            )
        if g.random() < 0.5:
            body = g.choice(("Here is the extracted data:", "Sure:", "Here's the JSON:")) + (
                "\n\n" + body
            )
        return body

    return _Task(
        feature="extract_json",
        prompt=prompt,
        render=render,
        flaws=("wrong_value", "wrong_value", "missing_field", "invalid_json"),
        systems=(
            "Extract structured data. Reply with valid JSON only.",
            "You convert customer messages into JSON records for a ticketing system.",
        ),
        inline_notes=(
            '  "status": "open",',
            f'  "phone": "{phone}",',
            '  "channel": "email",',
            '  "priority": "normal",',
            '  "verified": true,',
        ),
        inline_anchor="{",
        renames=(('"customer_name"', '"name"'), ('"order_id"', '"order_number"')),
        rewrites=(f'{{"id": "{order_id}"}}', f"{order_id}"),
        completed_signals=("data_imported", "task_marked_done"),
        closers=("Every field was found in the message; the date is normalised to ISO 8601.",),
    )


_TASK_BUILDERS: dict[str, Callable[..., _Task]] = {
    "summarise": _task_summarise,
    "code": _task_code,
    "translate": _task_translate,
    "support": _task_support,
    "brainstorm": _task_brainstorm,
    "extract_json": _task_extract,
}
_FEATURE_WEIGHTS = (
    ("summarise", 16), ("code", 22), ("email", 16), ("translate", 9), ("support", 15),
    ("brainstorm", 9), ("extract_json", 13),
)  # fmt: skip
_MODELS = {
    "default": (("acme-chat-2", 50), ("acme-chat-2-mini", 30), ("acme-chat-3-preview", 20)),
    "code": (("acme-code-1", 55), ("acme-chat-2", 30), ("acme-chat-2-mini", 15)),
    # The second half of the window: a new version of the code model takes most of the
    # code traffic, and users regenerate its answers to code questions twice as often
    # (REGRESSED_REGENERATE) - the regression the Signals page shows (docs/signals.md).
    "code_rollout": (
        ("acme-code-2", 45),
        ("acme-code-1", 10),
        ("acme-chat-2", 30),
        ("acme-chat-2-mini", 15),
    ),
}
_MODEL_QUALITY = {
    "acme-chat-2": 0.72,
    "acme-chat-2-mini": 0.58,
    "acme-chat-3-preview": 0.80,
    "acme-code-1": 0.74,
    "acme-code-2": 0.55,
}
REGRESSED_MODEL = "acme-code-2"
REGRESSED_FEATURE = "code"
REGRESSED_REGENERATE = 2.0  # times the regenerate probability on code questions


def _seconds(r: random.Random, low: int, high: int) -> int:
    """A random duration between `low` and `high` seconds, in milliseconds."""
    return r.randint(low * _SEC, high * _SEC)


def _weighted(r: random.Random, pairs: Sequence[tuple[Any, float]]) -> Any:
    values = [value for value, _ in pairs]
    weights = [weight for _, weight in pairs]
    return r.choices(values, weights)[0]


# ---------------------------------------------------------------------------------------
# Rendering and edits
# ---------------------------------------------------------------------------------------


def _fit_length(text: str, closers: Sequence[str], r: random.Random) -> str:
    """Pad with closing lines up to OUTPUT_MIN_CHARS; trim paragraphs to OUTPUT_MAX_CHARS."""
    while len(text) < OUTPUT_MIN_CHARS:
        text = f"{text}\n\n{r.choice(closers)}"
    while len(text) > OUTPUT_MAX_CHARS:
        paragraphs = text.split("\n\n")
        droppable = [i for i in range(1, len(paragraphs)) if "```" not in paragraphs[i]]
        if not droppable:
            cut = text[:OUTPUT_MAX_CHARS].rsplit("\n", 1)[0]
            return cut if len(cut) >= OUTPUT_MIN_CHARS else text[:OUTPUT_MAX_CHARS]
        del paragraphs[droppable[-1]]
        text = "\n\n".join(paragraphs)
    return text


def _render(task: _Task, r: random.Random, flaw: str | None) -> tuple[str, str]:
    """(output, reference): the output for `flaw` and a good version of the same answer."""
    variant = r.getrandbits(32)
    reference = _fit_length(task.render(random.Random(variant), None), task.closers, r)
    if flaw is None:
        output = reference
    elif flaw == "truncated":
        low, high = int(len(reference) * 0.4), int(len(reference) * 0.75)
        cut = max(OUTPUT_MIN_CHARS, r.randint(low, max(low, high)))
        output = reference[:cut].rsplit(" ", 1)[0].rstrip(" ,;:")
        if len(output) < OUTPUT_MIN_CHARS:
            output = reference[: OUTPUT_MIN_CHARS + 20].rstrip()
    else:
        output = _fit_length(task.render(random.Random(variant), flaw), task.closers, r)
    if r.random() < 0.05:  # a model glitch: a doubled short word
        output = _double_word(output, r)
    return output, reference


def _double_word(text: str, r: random.Random) -> str:
    lines = text.split("\n")
    candidates = [
        (i, word)
        for i, line in enumerate(lines)
        if _is_prose(line)
        for word in _GLITCH_WORDS
        if f" {word} " in line
    ]
    if not candidates:
        return text
    i, word = r.choice(candidates)
    lines[i] = lines[i].replace(f" {word} ", f" {word} {word} ", 1)
    return "\n".join(lines)


def _is_prose(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not line.startswith((" ", "\t")) and stripped[0] not in '{}[]"`'


def _line_kinds(text: str) -> list[tuple[str, str]]:
    """Each line with its kind: 'fence', 'code' (inside a fence), 'prose' or 'other'."""
    kinds = []
    inside = False
    for line in text.split("\n"):
        if line.startswith("```"):
            kinds.append((line, "fence"))
            inside = not inside
        elif inside:
            kinds.append((line, "code"))
        else:
            kinds.append((line, "prose" if _is_prose(line) else "other"))
    return kinds


def _cosmetic_step(text: str, r: random.Random) -> str:
    """One meaning-preserving touch to a prose line: a glitch, a word, punctuation."""
    for word in _GLITCH_WORDS:
        doubled = f" {word} {word} "
        if doubled in text:
            return text.replace(doubled, f" {word} ", 1)
    lines = text.split("\n")
    prose = [i for i, (_, kind) in enumerate(_line_kinds(text)) if kind == "prose"]
    if not prose:
        return text.rstrip("\n") if text.endswith("\n") else text + "\n"
    swaps = [(i, a, b) for i in prose for a, b in _COSMETIC_SWAPS if a in lines[i]]
    if swaps and r.random() < 0.7:
        i, old, new = r.choice(swaps)
        lines[i] = lines[i].replace(old, new, 1)
        return "\n".join(lines)
    for i in r.sample(prose, len(prose)):
        touched = _punctuation_touch(lines[i])
        if touched is not None:
            lines[i] = touched
            return "\n".join(lines)
    i = r.choice(prose)
    lines[i] = lines[i] + " " if not lines[i].endswith(" ") else lines[i].rstrip()
    return "\n".join(lines)


def _punctuation_touch(line: str) -> str | None:
    """A small punctuation fix to one prose line, or None if none applies."""
    if _LIST_ITEM.match(line) is not None and line.endswith("."):
        return line[:-1]  # no full stops at the end of list items
    if line[-1:].isalnum():
        return line + "."
    if ", and " in line or ", but " in line:
        return line.replace(", and ", " and ", 1).replace(", but ", " but ", 1)
    if " - " in line:
        return line.replace(" - ", " – ", 1)
    if "  " in line:
        return line.replace("  ", " ", 1)
    if line[:1].islower():
        return line[0].upper() + line[1:]
    if " so " in line:
        return line.replace(" so ", ", so ", 1)
    return None


def _correction_step(task: _Task, text: str, r: random.Random) -> str:
    """One substantive user change: swap in, add or delete a line, or rename an identifier."""
    kinds = _line_kinds(text)
    lines = [line for line, _ in kinds]
    prose = [i for i, (_, kind) in enumerate(kinds) if kind == "prose"]
    plain = [i for i in prose[1:] if _LIST_ITEM.match(lines[i]) is None]
    notes = [note for note in task.notes if note not in text]
    inline_notes = [note for note in task.inline_notes if note.strip() not in text]
    options = []
    if notes:
        options += ["add_note", "add_note"]
        if plain:
            options.append("replace_line")
    if len(prose) > 2:
        options.append("delete_line")
    if inline_notes:
        options += ["inline_note", "inline_note"]
    if any(old in text for old, _ in task.renames):
        options.append("rename")
    if not options:
        return text + "\n\n" + r.choice(task.closers)
    op = r.choice(options)
    if op == "add_note":
        note = r.choice(notes)
        if prose and r.random() < 0.5:
            lines.insert(r.choice(prose) + 1, note)
        else:
            lines += ["", note]
    elif op == "replace_line":
        lines[r.choice(plain)] = r.choice(notes)
    elif op == "delete_line":
        del lines[r.choice(prose[1:])]
    elif op == "inline_note":
        note = r.choice(inline_notes)
        if task.inline_anchor is not None:
            if task.inline_anchor in lines:
                lines.insert(lines.index(task.inline_anchor) + 1, note)
            else:
                lines += ["", note]
        else:
            code = [i for i, (_, kind) in enumerate(kinds) if kind == "code"]
            if code:
                at = r.choice(code)
                indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
                lines.insert(at, indent + note)
            else:
                lines += ["", note]
    else:
        old, new = r.choice([pair for pair in task.renames if pair[0] in text])
        return text.replace(old, new)
    return "\n".join(lines)


def _edit_cosmetic(output: str, r: random.Random) -> list[str] | None:
    """Snapshots of 1-3 cosmetic touches; the last one's ratio is in (0, COSMETIC_MAX)."""
    snapshots: list[str] = []
    current = output
    wanted = _weighted(r, ((1, 55), (2, 30), (3, 15)))
    for _ in range(wanted * 3):
        candidate = _cosmetic_step(current, r)
        ratio = edit_ratio(output, candidate)
        if candidate != current and 0 < ratio < COSMETIC_MAX - 0.005:
            current = candidate
            snapshots.append(current)
            if len(snapshots) >= wanted:
                break
    return snapshots or None


def _edit_correction(
    task: _Task, output: str, reference: str, flawed: bool, r: random.Random
) -> list[str] | None:
    """Snapshots of a real correction; the last one's ratio is in [0.10, 0.85]."""
    target = r.uniform(0.12, 0.55)
    snapshots: list[str] = []
    current = output
    if flawed and reference != output and edit_ratio(output, reference) <= CORRECTION_MAX - 0.05:
        current = reference  # the user fixes what was wrong first
        snapshots.append(current)
    for _ in range(14):
        ratio = edit_ratio(output, current)
        if ratio >= target:
            break
        candidate = _correction_step(task, current, r)
        if candidate != current and edit_ratio(output, candidate) <= CORRECTION_MAX - 0.02:
            current = candidate
            snapshots.append(current)
    if not snapshots or not CORRECTION_MIN <= edit_ratio(output, current) <= CORRECTION_MAX:
        return None
    return snapshots


def _edit_rewrite(task: _Task, output: str, r: random.Random) -> list[str] | None:
    """Snapshots of a rewrite: the user replaces the output with a short text of their own."""
    fitting = [text for text in task.rewrites if edit_ratio(output, text) > REWRITE_MIN + 0.005]
    if not fitting:
        return None
    final = r.choice(fitting)
    if r.random() < 0.3:
        first_line = output.split("\n", 1)[0]
        if first_line and first_line != final:
            return [first_line, final]
    return [final]


def _edit_token_fix(task: _Task, output: str, r: random.Random) -> tuple[list[str], str] | None:
    """A real correction of one token: an operator or keyword in code, else a number (an
    amount or a date), a month, weekday or name. ([fixed text], what was fixed), or None."""
    kinds = _line_kinds(output)
    lines = [line for line, _ in kinds]
    code = [i for i, (_, kind) in enumerate(kinds) if kind == "code"]
    fixes = [(i, a, b) for i in code for a, b in _CODE_TOKEN_FIXES if a in lines[i] + "\n"]
    if fixes and (task.feature == "code" or r.random() < 0.5):
        i, old, new = r.choice(fixes)
        lines[i] = (lines[i] + "\n").replace(old, new, 1)[:-1]
        return ["\n".join(lines)], "code"
    words = [w for bank in (_MONTHS, _WEEKDAYS, _FIRST) for w in bank if w in output]
    numbers = list(_NUMBER.finditer(output))
    if numbers and (not words or r.random() < 0.6):
        match = r.choice(numbers)
        value = match.group()
        digits = [k for k, ch in enumerate(value) if ch.isdigit()]
        k = r.choice(digits)
        fixed = value[:k] + str((int(value[k]) + r.randint(1, 8)) % 10) + value[k + 1 :]
        return [output[: match.start()] + fixed + output[match.end() :]], "number"
    if words:
        old = r.choice(words)
        bank = next(b for b in (_MONTHS, _WEEKDAYS, _FIRST) if old in b)
        new = r.choice([w for w in bank if w != old and w not in output] or [old + "a"])
        return [output.replace(old, new, 1)], "name_or_date"
    return None


def _edit_taste(task: _Task, output: str, r: random.Random) -> list[str] | None:
    """A fine answer restyled to the user's taste: wording, punctuation, renamed
    identifiers, a dropped line. Snapshots; the last one's ratio is up to about 0.4."""
    target = r.uniform(0.02, 0.4)
    snapshots: list[str] = []
    current = output
    for _ in range(16):
        if edit_ratio(output, current) >= target:
            break
        prose = [i for i, (_, kind) in enumerate(_line_kinds(current)) if kind == "prose"]
        roll = r.random()
        lines = current.split("\n")
        if roll < 0.2 and any(old in current for old, _ in task.renames):
            old, new = r.choice([pair for pair in task.renames if pair[0] in current])
            candidate = current.replace(old, new)
        elif roll < 0.45 and len(prose) > 2:
            del lines[r.choice(prose[1:])]
            candidate = "\n".join(lines)
        else:
            candidate = _cosmetic_step(current, r)
        if candidate not in (current, output) and candidate.strip():
            current = candidate
            snapshots.append(current)
    return snapshots or None


def _edit_trim(output: str, r: random.Random) -> list[str] | None:
    """A fine answer with its end cut off (closing paragraphs, or the last sentences)."""
    paragraphs = output.split("\n\n")
    if len(paragraphs) >= 3:
        keep = r.randint(max(1, len(paragraphs) // 2), len(paragraphs) - 1)
        trimmed = "\n\n".join(paragraphs[:keep])
    else:
        sentences = output.split(". ")
        if len(sentences) < 2:
            return None
        trimmed = ". ".join(sentences[: r.randint(1, len(sentences) - 1)]) + "."
    return [trimmed] if trimmed.strip() and trimmed != output else None


def _edit_note(output: str, r: random.Random) -> list[str]:
    """The user's own notes typed into the edit box, before or after a fine answer."""
    notes = "\n".join(r.sample(_USER_NOTES, r.randint(1, 3)))
    return [f"{notes}\n\n{output}" if r.random() < 0.3 else f"{output}\n\n{notes}"]


def _edit_truth(behaviour: str, good: bool, fixed: bool) -> tuple[str | None, bool]:
    """(kind of edit or None, is the user's final text good) for ground truth. A correction
    that began with the good answer (`fixed`) or a one-token fix makes it good; a rewrite
    is the user's own text; taste, trim, note and no-op edits leave it as good as it was."""
    if behaviour == "edit_token_fix":
        return "correction", True
    if behaviour == "edit_correction":
        return ("correction", True) if not good and fixed else ("note", good)
    if behaviour == "edit_rewrite":
        return "rewrite", True
    if behaviour == "edit_cosmetic":
        return "taste", good
    kinds = {"edit_taste": "taste", "edit_trim": "trim", "edit_note": "note", "edit_noop": "noop"}
    return kinds.get(behaviour), good


def _pick_snapshots(snapshots: list[str], r: random.Random) -> list[str]:
    """The texts sent as successive edit events: a few snapshots, always ending on the last."""
    wanted = min(len(snapshots), _weighted(r, ((1, 55), (2, 30), (3, 15))))
    earlier = sorted(r.sample(range(len(snapshots) - 1), wanted - 1))
    return [snapshots[i] for i in earlier] + [snapshots[-1]]


def _copy_text(text: str, r: random.Random) -> str | None:
    """What a copy event carries: nothing, the whole text, a code block or a paragraph."""
    roll = r.random()
    if roll < 0.45:
        return None
    if "```" in text and roll < 0.85:
        inside = text.split("```", 2)[1]
        return inside.split("\n", 1)[1].rstrip("\n") if "\n" in inside else inside
    if roll < 0.75:
        return text
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return max(paragraphs, key=len)


# ---------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------


@dataclass
class _Raw:
    ms: int
    order: int
    body: dict[str, Any]  # everything but id and timestamp
    # For delivery: the generation this event acts on, when it is an edit/copy.
    acts_on: str | None = None


@dataclass
class _Builder:
    rng: random.Random
    seed: int
    prefix: str
    start_ms: int
    users: int
    raw: list[_Raw] = field(default_factory=list)
    generation_count: int = 0
    hard: bool = False  # add the harder behaviours (see REGENERATE_GOOD_RATE and after)
    silent_outcome_rate: float = SILENT_OUTCOME_RATE
    # This session's generation events (hard: ground truth of the outcome is added at
    # the end) and edits the user makes in a later session: (generation id, texts).
    session_generations: list[dict[str, Any]] = field(default_factory=list)
    later_edits: list[tuple[str, list[str]]] = field(default_factory=list)

    def emit(self, ms: int, body: dict[str, Any], acts_on: str | None = None) -> None:
        self.raw.append(_Raw(ms, len(self.raw), body, acts_on))

    def user(self) -> tuple[str, str]:
        index = int(self.users * self.rng.random() ** 1.7)
        name = f"{_FIRST[index % len(_FIRST)]} {_LAST[(index * 7 + 3) % len(_LAST)]}"
        return f"{self.prefix}-{self.seed}-u{index}", name

    def session_start(self) -> int:
        """A start time in the window, weighted towards working hours (UTC)."""
        r = self.rng
        day_ms = 24 * 60 * _MIN
        anchor = (self.start_ms - WINDOW // _MS) // day_ms * day_ms
        if r.random() < 0.8:
            minute = int(min(max(r.gauss(13.5 * 60, 3.2 * 60), 0), 24 * 60 - 1))
        else:
            minute = r.randrange(24 * 60)
        ms = anchor + r.randrange(15) * day_ms + minute * _MIN + r.randrange(_MIN)
        low, high = self.start_ms - WINDOW // _MS, self.start_ms - 3 * 60 * _MIN
        while ms > high:
            ms -= day_ms
        while ms < low:
            ms += day_ms
        return ms

    def session(self, index: int, t: int) -> None:
        r = self.rng
        sid = f"{self.prefix}-{self.seed}-s{index}"
        uid, sender = self.user()
        first_event = len(self.raw)
        self.session_generations = []
        self.later_edits = []
        feature = _weighted(r, _FEATURE_WEIGHTS)
        model = _weighted(r, self.models("code" if feature == "code" else "default", t))
        plain_string = r.random() < 0.1
        system_prompt: str | None = None
        history: list[dict[str, str]] = []
        turns = _weighted(r, ((1, 40), (2, 26), (3, 16), (4, 10), (5, 8)))
        for turn in range(turns):
            if turn and r.random() < 0.25:
                feature = _weighted(r, _FEATURE_WEIGHTS)
                if feature == "code" and not model.startswith("acme-code"):
                    model = _weighted(r, self.models("code", t))
            task = self.task(feature, sender, t)
            if turn == 0 and not plain_string and r.random() < 0.35:
                system_prompt = r.choice(task.systems)
            prompt = task.prompt
            if turn:
                prompt = r.choice(("", "Thanks! Next one: ", "One more. ", "Another one:\n\n"))
                prompt += task.prompt
            if plain_string:
                conversation: str | list[dict[str, str]] = prompt
            else:
                conversation = (
                    [{"role": "system", "content": system_prompt}] if system_prompt else []
                )
                conversation += [*history, {"role": "user", "content": prompt}]
            t += _seconds(r, 4, 90)  # reading and typing the prompt
            t, good, behaviour, final_text = self.task_run(task, conversation, model, sid, uid, t)
            outcome_basis = (task, good, behaviour)
            history += [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": final_text},
            ]
            t += _seconds(r, 15, 300)
        t = self.outcome(sid, uid, t, *outcome_basis)
        for n, (gid, texts) in enumerate(self.later_edits):  # the user comes back later
            t += _seconds(r, 3600, 30 * 3600)
            later = {"session_id": f"{sid}-later{n}", "user_id": uid, "generation_id": gid}
            for text in texts:
                t += _seconds(r, 10, 240)
                self.emit(t, {"type": "edit", **later, "text": text}, acts_on=gid)
        overflow = self.raw[-1].ms - (self.start_ms - _MIN)
        if overflow > 0:  # keep the whole session before `start`
            for item in self.raw[first_event:]:
                item.ms -= overflow

    def models(self, kind: str, t: int) -> tuple[tuple[str, int], ...]:
        """The models serving `kind` at time `t`: the new code model is rolled out in the
        second half of the window."""
        if kind == "code" and t >= self.start_ms - WINDOW // _MS // 2:
            return _MODELS["code_rollout"]
        return _MODELS[kind]

    def task(self, feature: str, sender: str, t: int) -> _Task:
        today = (_EPOCH + t * _MS).date()
        if feature == "email":
            return _task_email(self.rng, today, sender)
        return _TASK_BUILDERS[feature](self.rng, today)

    def task_run(
        self,
        task: _Task,
        conversation: str | list[dict[str, str]],
        model: str,
        sid: str,
        uid: str,
        t: int,
    ) -> tuple[int, bool, str, str]:
        """Generations (with regenerations) for one prompt, and what the user did with them."""
        r = self.rng
        hard = r.random() < 0.15
        p_good = 0.3 if hard else _MODEL_QUALITY[model]
        replaces: str | None = None
        regenerations = 0
        base = {"session_id": sid, "user_id": uid}
        while True:
            good = r.random() < p_good
            flaw = None if good else r.choice(task.flaws)
            output, reference = _render(task, r, flaw)
            gid = f"{self.prefix}-{self.seed}-g{self.generation_count}"
            self.generation_count += 1
            if regenerations < 4:
                if regenerations == 0:
                    p_regen = (0.75 if hard else 0.5) if not good else (0.1 if hard else 0.06)
                else:
                    p_regen = (0.72 if hard else 0.5) if not good else 0.05
            else:
                p_regen = 0.0
            if self.hard and good and regenerations < 4:
                p_regen = REGENERATE_GOOD_RATE
            if model == REGRESSED_MODEL and task.feature == REGRESSED_FEATURE:
                p_regen = min(0.95, p_regen * REGRESSED_REGENERATE)
            generation = {
                "type": "generation",
                **base,
                "generation_id": gid,
                "input": copy.deepcopy(conversation),
                "output": output,
                "model": model,
                "replaces": replaces,
                "metadata": {
                    "feature": task.feature,
                    "sim": {"good": good, "behaviour": "regenerated", "flaw": flaw},
                },
            }
            if self.hard:
                self.session_generations.append(generation)
            if r.random() < p_regen:
                self.emit(t, generation)
                if r.random() < 0.5:
                    t += _seconds(r, 1, 12)
                    self.emit(t, self.view(base, gid, r.randint(800, 12000)))
                if r.random() < self.rating_rate(good, 0.08):
                    t += _seconds(r, 2, 8)
                    self.emit(t, self.rating(base, gid, good))
                t += _seconds(r, 3, 45)
                self.emit(t, {"type": "regenerate", **base, "generation_id": gid})
                t += _seconds(r, 2, 25)
                replaces = gid
                regenerations += 1
                p_good = 0.35 if hard else min(0.9, _MODEL_QUALITY[model] + 0.05)
                continue
            sim = generation["metadata"]["sim"]
            picked = self.hard_behaviour(flaw) if self.hard else None
            behaviour = picked or self.behaviour(good, regenerations, len(output))
            final_text = output
            edits: list[str] | None = None
            if behaviour == "edit_token_fix":
                fix = _edit_token_fix(task, output, r)
                if fix is None:
                    behaviour = "edit_correction"
                else:
                    edits, sim["fix"] = fix
            elif behaviour == "edit_taste":
                edits = _edit_taste(task, output, r)
            elif behaviour == "edit_trim":
                edits = _edit_trim(output, r)
            elif behaviour == "edit_note":
                edits = _edit_note(output, r)
            elif behaviour == "edit_noop":
                edits = [output]
            if behaviour in HARD_BEHAVIOURS and edits is None:
                behaviour = "view"
            if behaviour == "edit_rewrite":
                edits = _edit_rewrite(task, output, r)
                if edits is None:
                    behaviour = "edit_correction"
            if behaviour == "edit_correction":
                edits = _edit_correction(task, output, reference, not good, r)
                if edits is None:
                    behaviour = "view"
            if behaviour == "edit_cosmetic":
                edits = _edit_cosmetic(output, r)
                if edits is None:
                    behaviour = "view"
            sim["behaviour"] = behaviour
            if edits:
                final_text = edits[-1]
                sim["edit_ratio"] = round(edit_ratio(output, final_text), 4)
            if self.hard:
                fixed = bool(edits) and behaviour == "edit_correction" and edits[0] == reference
                sim["edit_kind"], sim["final_good"] = _edit_truth(behaviour, good, fixed)
                if picked == "copy":  # the usual mix copies some bad answers too
                    sim["copy_reason"] = "bug_report"
                if edits and r.random() < LATER_EDIT_RATE:
                    self.later_edits.append((gid, _pick_snapshots(edits, r)))
                    sim["edit_session"] = "later"
                    edits, final_text = None, output
            self.emit(t, generation)
            t = self.actions(base, gid, behaviour, good, output, final_text, edits, t)
            return t, good, behaviour, final_text

    def hard_behaviour(self, flaw: str | None) -> str | None:
        """One of the harder behaviours at its documented rate, or None (the usual mix)."""
        roll = self.rng.random()
        if roll < NOOP_EDIT_RATE:
            return "edit_noop"
        roll -= NOOP_EDIT_RATE
        if flaw is None:
            rates: tuple[tuple[str, float], ...] = (
                ("edit_taste", TASTE_EDIT_RATE),
                ("edit_trim", TRIM_EDIT_RATE),
                ("edit_note", NOTE_EDIT_RATE),
            )
        else:
            fixable = TOKEN_FIX_RATE if flaw in TOKEN_FIXABLE else 0.0
            rates = (("copy", COPY_BAD_RATE), ("edit_token_fix", fixable))
        for behaviour, rate in rates:
            if roll < rate:
                return behaviour
            roll -= rate
        return None

    def behaviour(self, good: bool, regenerations: int, length: int) -> str:
        r = self.rng
        if good:
            choices = [
                ("view", 34), ("copy", 24), ("share", 5), ("copy_share", 4),
                ("edit_cosmetic", 15), ("edit_correction", 7), ("edit_rewrite", 1), ("none", 6),
            ]  # fmt: skip
        else:
            choices = [
                ("view", 11), ("copy", 6), ("share", 1), ("edit_cosmetic", 4),
                ("edit_correction", 38), ("edit_rewrite", 12), ("none", 28),
            ]  # fmt: skip
        if regenerations >= 3:
            choices = [(b, w * (3 if b == "none" else 1)) for b, w in choices]
        if length < 400:  # too short to replace with a short text of one's own
            choices = [(b, w) for b, w in choices if b != "edit_rewrite"]
        return _weighted(r, choices)

    def actions(
        self,
        base: dict[str, str],
        gid: str,
        behaviour: str,
        good: bool,
        output: str,
        final_text: str,
        edits: list[str] | None,
        t: int,
    ) -> int:
        """Events that follow a final (not regenerated) generation; returns the last time."""
        r = self.rng
        on = {**base, "generation_id": gid}
        if behaviour == "none":
            return t
        if behaviour == "view" or r.random() < 0.55:
            dwell = r.randint(4000, 150000) if behaviour == "view" else r.randint(1500, 60000)
            t += dwell
            self.emit(t, self.view(base, gid, dwell))
            if behaviour == "view" and r.random() < 0.2:
                dwell = r.randint(2000, 40000)
                t += _seconds(r, 30, 600)
                self.emit(t, self.view(base, gid, dwell))
        if edits:
            for text in _pick_snapshots(edits, r):
                t += _seconds(r, 10, 240)
                self.emit(t, {"type": "edit", **on, "text": text}, acts_on=gid)
            if r.random() < (0.8 if behaviour == "edit_noop" else 0.35):
                t += _seconds(r, 3, 60)
                self.emit(t, self.copy_event(on, final_text), acts_on=gid)
        if behaviour in ("copy", "copy_share"):
            t += _seconds(r, 3, 60)
            self.emit(t, self.copy_event(on, output), acts_on=gid)
            if r.random() < 0.15:
                t += _seconds(r, 10, 120)
                self.emit(t, self.copy_event(on, output), acts_on=gid)
        if behaviour in ("share", "copy_share"):
            t += _seconds(r, 3, 90)
            self.emit(t, {"type": "share", **on}, acts_on=gid)
        if r.random() < self.rating_rate(good, 0.12):
            t += _seconds(r, 2, 30)
            self.emit(t, self.rating(base, gid, good))
        return t

    def rating_rate(self, good: bool, easy: float) -> float:
        """How likely a user rates an answer: `easy` on the easier traffic, else rarely and
        mostly when it is bad (RATE_GOOD_RATE, RATE_BAD_RATE)."""
        if not self.hard:
            return easy
        return RATE_GOOD_RATE if good else RATE_BAD_RATE

    def view(self, base: dict[str, str], gid: str, dwell: int) -> dict[str, Any]:
        return {"type": "view", **base, "generation_id": gid, "dwell_ms": dwell}

    def copy_event(self, on: dict[str, str], text: str) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "copy", **on}
        part = _copy_text(text, self.rng)
        if part:
            event["text"] = part
        return event

    def rating(self, base: dict[str, str], gid: str, good: bool) -> dict[str, Any]:
        r = self.rng
        positive = r.random() < (0.9 if good else 0.15)
        event: dict[str, Any] = {
            "type": "rating",
            **base,
            "generation_id": gid,
            "value": 1 if positive else -1,
        }
        if r.random() < 0.4:
            bank = _RATING_COMMENTS_GOOD if positive else _RATING_COMMENTS_BAD
            event["comment"] = r.choice(bank)
        return event

    def outcome(self, sid: str, uid: str, t: int, task: _Task, good: bool, behaviour: str) -> int:
        """Completed (with a signal), abandoned explicitly, or no outcome event at all.
        Returns the time of the last event."""
        r = self.rng
        if self.hard:
            return self.hard_outcome(sid, uid, t, task, good, behaviour)
        if behaviour == "none":
            weights = (("completed", 10), ("abandoned", 35), ("silent", 55))
        elif good:
            weights = (("completed", 72), ("abandoned", 8), ("silent", 20))
        elif behaviour in ("edit_correction", "edit_rewrite"):
            weights = (("completed", 60), ("abandoned", 10), ("silent", 30))
        else:
            weights = (("completed", 30), ("abandoned", 25), ("silent", 45))
        outcome = _weighted(r, weights)
        if outcome == "silent":
            return t
        return self.outcome_event(sid, uid, t, task, outcome)

    def hard_outcome(
        self, sid: str, uid: str, t: int, task: _Task, good: bool, behaviour: str
    ) -> int:
        """Every session truly ends completed or abandoned (recorded on each of its
        generations as sim.session_outcome); the event is sent for a completed one unless
        the product is silent (`silent_outcome_rate`), for an abandoned one at
        ABANDONED_SENT_RATE (sim.outcome_sent)."""
        r = self.rng
        if behaviour == "none":
            completed = 15
        elif good or behaviour in ("edit_token_fix", "edit_correction", "edit_rewrite"):
            completed = 85
        else:
            completed = 35
        outcome = _weighted(r, (("completed", completed), ("abandoned", 100 - completed)))
        if outcome == "completed":
            sent = r.random() >= self.silent_outcome_rate
        else:
            sent = r.random() < ABANDONED_SENT_RATE
        for generation in self.session_generations:
            generation["metadata"]["sim"].update(session_outcome=outcome, outcome_sent=sent)
        return self.outcome_event(sid, uid, t, task, outcome) if sent else t

    def outcome_event(self, sid: str, uid: str, t: int, task: _Task, outcome: str) -> int:
        r = self.rng
        signals = task.completed_signals if outcome == "completed" else task.abandoned_signals
        t += _seconds(r, 10, 900)
        self.emit(
            t,
            {
                "type": "session_outcome",
                "session_id": sid,
                "user_id": uid,
                "outcome": outcome,
                "signal": r.choice(signals),
            },
        )
        return t


# ---------------------------------------------------------------------------------------
# Delivery: batches, duplicates, late events
# ---------------------------------------------------------------------------------------


@dataclass
class _Held:
    due: int | None  # first batch index it may go into; None: waiting for its trigger
    order: int
    event: dict[str, Any]
    replay: bool = False  # a duplicate of an event already sent


def _deliver(
    events: list[dict[str, Any]],
    triggers: dict[int, str],
    r: random.Random,
    batch_size: int,
) -> list[list[dict[str, Any]]]:
    """Batches in send order: timestamp order, with replayed and held-back events.

    Non-held events keep their timestamp order and fill batches of exactly `batch_size`
    (only the tail may be shorter). A held event or a replay is due in a batch strictly
    after the one it was held from (or after the one holding the original); `triggers`
    maps the index of a generation event to the id of an edit/copy on it: if that generation
    is held, it is sent only in a batch after the one that sends that action.
    """
    batches: list[list[dict[str, Any]]] = []
    natural: list[dict[str, Any]] = []  # current batch, in timestamp order
    inserts: list[dict[str, Any]] = []  # current batch, held or replayed events
    held: list[_Held] = []
    waiting: dict[str, list[_Held]] = {}
    orders = iter(range(1 << 62))

    def on_sent(event: dict[str, Any]) -> None:
        """The first copy of `event` goes into the current batch."""
        index = len(batches)
        for item in waiting.pop(event["id"], []):
            item.due = index + 1 + (1 if r.random() < 0.3 else 0)
        if r.random() < DUPLICATE_RATE:
            due = index + _weighted(r, ((1, 60), (2, 25), (3, 15)))
            held.append(_Held(due, next(orders), copy.deepcopy(event), replay=True))

    def collect(force: bool = False) -> None:
        """Move held events that are due into the current batch, oldest first."""
        index = len(batches)
        ready = sorted(
            (h for h in held if h.due is not None and (force or h.due <= index)),
            key=lambda h: h.order,
        )
        room = batch_size - len(natural) - len(inserts)
        for item in ready[: max(room, 0)]:
            held.remove(item)
            inserts.append(item.event)
            if not item.replay:
                on_sent(item.event)

    def flush() -> None:
        merged = list(natural)
        for event in inserts:
            merged.insert(r.randint(0, len(merged)), event)
        batches.append(merged)
        natural.clear()
        inserts.clear()
        collect()

    for index, event in enumerate(events):
        trigger = triggers.get(index)
        if trigger is not None and r.random() < LATE_BEFORE_OWN_ACTION_RATE:
            item = _Held(None, next(orders), event)
            held.append(item)
            waiting.setdefault(trigger, []).append(item)
        elif r.random() < LATE_RATE:
            due = len(batches) + _weighted(r, ((1, 55), (2, 30), (3, 15)))
            held.append(_Held(due, next(orders), event))
        else:
            natural.append(event)
            on_sent(event)
        while len(natural) + len(inserts) >= batch_size:
            flush()
    while natural or inserts or held:
        if natural or inserts:
            flush()
        else:
            # No more regular traffic: send what is held, in order. Every trigger has been
            # sent by now (triggers are never themselves waiting), so nothing waits forever.
            for item in held:
                if item.due is None:
                    item.due = len(batches)
            collect(force=True)
    return batches


def _iso(ms: int) -> str:
    return (_EPOCH + ms * _MS).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _count_late(batches: list[list[dict[str, Any]]]) -> int:
    """Distinct events whose first copy follows a batch holding a later timestamp."""
    late = 0
    seen: set[str] = set()
    newest_before = ""  # ISO strings of one format compare like the instants they name
    for batch in batches:
        newest_here = newest_before
        for event in batch:
            if event["id"] in seen:
                continue
            seen.add(event["id"])
            if event["timestamp"] < newest_before:
                late += 1
            newest_here = max(newest_here, event["timestamp"])
        newest_before = newest_here
    return late


def simulate_traffic(
    *,
    sessions: int,
    seed: int = 0,
    start: datetime | None = None,
    batch_size: int = 200,
    id_prefix: str = "sim",
    hard: bool = False,
    silent_outcome_rate: float = SILENT_OUTCOME_RATE,
) -> SimulatedTraffic:
    """Simulate `sessions` user sessions of an LLM product, as batches of ingestion events.

    Deterministic given all arguments (`start` defaults to now, UTC; a naive `start` is
    taken as UTC). Raises ValueError for a negative `sessions` or a `batch_size` below 1.
    See the module docstring for the contracts on events, timestamps and delivery.
    """
    if sessions < 0:
        raise ValueError("sessions must be 0 or more")
    if batch_size < 1:
        raise ValueError("batch_size must be 1 or more")
    if not 0 <= silent_outcome_rate <= 1:
        raise ValueError("silent_outcome_rate must be between 0 and 1")
    if start is None:
        start = datetime.now(UTC)
    elif start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC)
    rng = random.Random(seed)
    builder = _Builder(
        rng=rng,
        seed=seed,
        prefix=id_prefix,
        start_ms=(start - _EPOCH) // _MS,
        users=max(1, (sessions + 2) // 3),
        hard=hard,
        silent_outcome_rate=silent_outcome_rate,
    )
    for index, begin in enumerate(sorted(builder.session_start() for _ in range(sessions))):
        builder.session(index, begin)

    events: list[dict[str, Any]] = []
    generation_index: dict[str, int] = {}
    actions: dict[str, tuple[str | None, str | None]] = {}  # gid -> (first edit, first copy)
    previous = None
    for n, item in enumerate(sorted(builder.raw, key=lambda raw: (raw.ms, raw.order))):
        ms = item.ms if previous is None else max(item.ms, previous + 1)  # unique instants
        previous = ms
        body = dict(item.body)
        event = {"id": f"{id_prefix}-{seed}-{n}", "type": body.pop("type"), "timestamp": _iso(ms)}
        event.update(body)
        if event["type"] == "generation":
            generation_index[event["generation_id"]] = n
        elif item.acts_on is not None and event["type"] in ("edit", "copy"):
            edit, copied = actions.get(item.acts_on, (None, None))
            if event["type"] == "edit" and edit is None:
                edit = event["id"]
            elif event["type"] == "copy" and copied is None:
                copied = event["id"]
            actions[item.acts_on] = (edit, copied)
        events.append(event)
    triggers = {
        generation_index[gid]: edit or copied
        for gid, (edit, copied) in actions.items()
        if (edit or copied) is not None
    }
    batches = _deliver(events, triggers, rng, batch_size)
    return SimulatedTraffic(
        batches=batches,
        sessions=sessions,
        events=len(events),
        duplicates=sum(len(batch) for batch in batches) - len(events),
        late=_count_late(batches),
    )
