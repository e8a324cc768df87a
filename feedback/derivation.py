"""Derive a session's signals and training labels from its event log.

Pure Python, no Django: the caller loads one session's generations and events, calls
`derive_session()`, and stores the result. The function is pure: events may come in any
order, and the same log always gives the same output, label keys and order included, so
the caller can upsert labels by `key` and delete the keys that disappeared. Re-deriving
after late events arrive is the normal way to catch up.

The rules, confidence formulas and weights are documented for the team in docs/labels.md;
keep the two in step.
"""

import hashlib
import json
import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from feedback.edits import EditClass, classify_edit
from feedback.precision import band_of, calibrated, qa_rate, wilson

Outcome = Literal["completed", "abandoned", "inactive", "open"]
LabelKind = Literal["preference_pair", "completion", "high_retry", "rating"]
LabelSource = Literal["edit", "regenerate", "copy", "share", "outcome", "rating"]
ReviewReason = Literal["low_confidence", "high_retry", "abandoned", "qa_sample"]
DownstreamAction = Literal["share", "copy", "edit", "edit_rewrite", "completed"]

# Confidence numbers: the estimated share of such labels that are right, measured on the
# harder simulated traffic (bench/fidelity.py) and on an independent one. docs/labels.md
# explains them; change both together.
EDIT_REWRITE: Final = 0.40  # ratio above the band: a new answer, not a correction
# A regenerate pair: people regenerate good answers for variety, so even a copied or shared
# replacement says little about the discarded answer (0.5-0.7 measured). Always below the
# default threshold: people decide, unless the project lowers it.
REGENERATE_BASE: Final[dict[DownstreamAction, float]] = {
    "share": 0.65,
    "copy": 0.55,
    "completed": 0.55,
    "edit": 0.45,
    "edit_rewrite": 0.35,  # the accepted generation was itself rewritten: weak acceptance
}
REGENERATE_DWELL_BONUS: Final = 0.05  # reached at REGENERATE_DWELL_FULL_MS of reading
REGENERATE_DWELL_FULL_MS: Final = 30_000
REGENERATE_RATED_BONUS: Final = 0.15  # the user rated the discarded answer down
DWELL_MAX_MS: Final = 86_400_000  # a day: longer reading times are clamped to it
READ_MS: Final = 10_000  # reading time that counts as "read"
SHARE_ACCEPT: Final = 0.90
SHARE_AND_COPY_BONUS: Final = 0.03
# A copy alone: some copies are of bad answers (to paste into a bug report), about one in
# five measured. A rating below zero (thumbs down) beside it makes it no positive.
COPY_ACCEPT_PARTIAL: Final = 0.75  # a copy of a tiny part of the output
COPY_ACCEPT_FULL: Final = 0.80  # a copy of all of it (or a copy event without text)
ACCEPT_THEN_REGENERATED_PENALTY: Final = 0.10
COMPLETED_BASE: Final = 0.65
COMPLETED_LAST_IN_SESSION_BONUS: Final = 0.05
COMPLETED_WITH_SIGNAL_BONUS: Final = 0.05
COMPLETED_READ_BONUS: Final = 0.15  # the answer was read (READ_MS) before the session ended
ABANDONED_BASE: Final = 0.35
ABANDONED_PER_REGENERATION: Final = 0.05  # frustration before leaving, up to 3 regenerations
ABANDONED_MAX_REGENERATIONS: Final = 3
ABANDONED_AFTER_ACTION_PENALTY: Final = 0.20  # it was copied/shared/edited, then left
# Inactive session (no outcome events): the weak negative from regenerating, then leaving.
INACTIVE_AFTER_RETRY_PENALTY: Final = 0.15
RATING: Final = 0.95

_OUTCOMES: Final = ("completed", "abandoned")  # a tuple: `in` must not hash the payload
_ACTION_STRENGTH: Final[tuple[DownstreamAction, ...]] = ("share", "copy", "edit", "completed")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event of the session; `timestamp` must be timezone-aware.

    `payload` holds the type's own fields as validated at ingestion: `text` (edit, copy),
    `dwell_ms` (view), `value` and `comment` (rating), `outcome` and `signal`
    (session_outcome). `generation` events are ignored here: pass generations separately.
    Derivation never raises on a payload: a field of the wrong type, a number that is not
    finite or does not fit a float is treated as missing, and dwell times are clamped to
    [0, DWELL_MAX_MS] (payloads stored before validation was tightened stay derivable).
    """

    client_id: str
    type: str
    timestamp: datetime
    generation_ref: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class GenerationRecord:
    """One model output; `input` is already a list of chat messages."""

    ref: str
    input: list[dict[str, Any]]
    output: str
    model: str
    replaces_ref: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Policy:
    """A project's routing policy. Defaults are those of DESIGN.md.

    Weights are per label source and are what exports multiply by recency decay:
    copies and shares (explicit acceptance) weigh more than a completed session (passive
    acceptance); an abandoned session is a passive negative.
    """

    edit_ratio_min: float = 0.05
    edit_ratio_max: float = 0.90
    retry_threshold: int = 3
    # Labels below it go to review and never train unreviewed. Confidences estimate
    # precision, and 0.9 keeps what trains unreviewed at about 0.95 (docs/labels.md).
    confidence_threshold: float = 0.9
    qa_sample_rate: float = 0.02
    weight_edit: float = 1.0
    weight_regenerate: float = 0.9
    weight_copy_share: float = 1.0
    weight_completed: float = 0.6
    weight_abandoned: float = 0.6
    weight_rating: float = 1.0
    # Whether every session that ends sends a session_outcome event. Without that,
    # inactivity is no evidence of failure: a timed-out session is "inactive", not
    # "abandoned". False (the default) invents no negatives.
    sends_outcome_events: bool = False
    # Measured precision (feedback/quality.py, docs/quality.md): verdict counts (right, n)
    # per (rule, confidence band of the rule's heuristic), the precision training data must
    # reach, the verdicts a band needs before they decide routing, and the rules the
    # collapse guard sends to review.
    target_precision: float = 0.95
    min_verdicts: int = 30
    verdicts: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    guarded_rules: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 0.0 <= self.edit_ratio_min <= self.edit_ratio_max <= 1.0:
            raise ValueError("Need 0 <= edit_ratio_min <= edit_ratio_max <= 1.")
        if self.retry_threshold < 1:
            raise ValueError("retry_threshold must be at least 1.")
        if not 0.0 <= self.confidence_threshold <= 1.0:
            raise ValueError("confidence_threshold must be within [0, 1].")
        if not 0.0 <= self.qa_sample_rate <= 1.0:
            raise ValueError("qa_sample_rate must be within [0, 1].")
        weights = (
            self.weight_edit,
            self.weight_regenerate,
            self.weight_copy_share,
            self.weight_completed,
            self.weight_abandoned,
            self.weight_rating,
        )
        if min(weights) < 0.0:
            raise ValueError("Weights must not be negative.")


@dataclass(frozen=True, slots=True)
class SessionSignals:
    outcome: Outcome
    outcome_signal: str | None
    retries: int  # regenerate actions in the session
    generations: int


@dataclass(frozen=True, slots=True)
class GenerationSignals:
    edit_ratio: float  # Indel normalised distance output -> final_text, 4 places
    edits: int
    final_text: str
    regenerated: bool
    chain_position: int  # 1 = first generation of its regenerate chain
    chain_length: int
    copied: bool
    shared: bool
    dwell_ms: int
    rating: int | float | None
    downstream_action: bool
    # What the latest edit changed (feedback/edits.py): "none" without an edit that
    # changed the text; cosmetic, trim and note edits are no action.
    edit_kind: str = "none"


@dataclass(frozen=True, slots=True)
class DerivedLabel:
    key: str
    kind: LabelKind
    source: LabelSource
    rule: str
    generation_ref: str
    other_generation_ref: str | None
    prompt: list[dict[str, Any]]
    chosen: str | None
    rejected: str | None
    completion: str | None
    label: bool | None
    confidence: float
    weight: float
    needs_review: bool
    review_reason: ReviewReason | None
    signals: dict[str, Any] = field(default_factory=dict)
    rule_confidence: float | None = None  # the rule's heuristic, before verdicts calibrate it


@dataclass(frozen=True, slots=True)
class SessionDerivation:
    session: SessionSignals
    generations: dict[str, GenerationSignals]  # in generation order
    labels: list[DerivedLabel]


class _Evidence:
    """What the events say about one generation, accumulated in one pass."""

    __slots__ = (
        "output_length",
        "edits",
        "latest_edit",
        "final_text",
        "copied",
        "copy_coverage",
        "shared",
        "dwell_ms",
        "latest_rating",
        "rating",
        "rating_comment",
        "regenerate_events",
    )

    def __init__(self, output: str) -> None:
        self.output_length = len(output)
        self.edits = 0
        self.latest_edit: tuple[datetime, str] | None = None
        self.final_text = output
        self.copied = False
        self.copy_coverage = 0.0
        self.shared = False
        self.dwell_ms = 0
        self.latest_rating: tuple[datetime, str] | None = None
        self.rating: int | float | None = None
        self.rating_comment: str | None = None
        self.regenerate_events: list[tuple[datetime, str]] = []


@dataclass(slots=True)
class _Chain:
    """A regenerate chain: a tree of generations linked by replacement, in order."""

    members: list[str]
    regenerations: int = 0

    @property
    def root(self) -> str:
        return self.members[0]

    @property
    def last(self) -> str:
        return self.members[-1]


def derive_session(
    *,
    generations: list[GenerationRecord],
    events: list[EventRecord],
    policy: Policy,
    abandoned_by_timeout: bool = False,
) -> SessionDerivation:
    """Signals and labels for one session.

    Contract:
    - Input order does not matter. Generations are ordered by (created_at, ref); where
      events must be ordered ("latest edit", "latest outcome"), the order is
      (timestamp, client_id), so ties are broken the same way on every run.
    - Events naming a generation that is not in `generations` (not arrived yet) are
      ignored; so are `replaces` links to such a generation. Call again when it arrives.
    - `abandoned_by_timeout` (the inactivity sweep timed the session out) makes the
      outcome "abandoned" when the policy says the project sends outcome events, else
      "inactive"; either only when the log holds no session_outcome event, which always
      wins. An inactive session gets a negative only from stronger evidence: its last
      generation was a regeneration (or regenerated) and got no action (docs/labels.md).
    - Label keys are stable across re-derivations: one key per (rule slot, generation),
      e.g. "edit:g1" keeps its key when a later edit turns a correction into a rewrite.
    """
    by_ref = _index_generations(generations)
    evidence = {ref: _Evidence(gen.output) for ref, gen in by_ref.items()}
    outcome_event = _collect_evidence(events, evidence)

    outcome: Outcome = "open"
    outcome_signal: str | None = None
    if outcome_event is not None:
        outcome = outcome_event.payload["outcome"]
        signal = outcome_event.payload.get("signal")
        outcome_signal = signal if isinstance(signal, str) and signal else None
    elif abandoned_by_timeout:
        outcome = "abandoned" if policy.sends_outcome_events else "inactive"

    parent, children = _link_regenerations(by_ref, evidence)
    chains, chain_of, position = _build_chains(by_ref, evidence, parent, children)
    last_in_session = next(reversed(by_ref)) if by_ref else None

    signals: dict[str, GenerationSignals] = {}
    final: dict[str, bool] = {}
    changed: dict[str, bool] = {}  # an edit corrected or rewrote it: only then an action
    edit_of: dict[str, EditClass] = {}  # what the latest edit changed (feedback/edits.py)
    for ref, gen in by_ref.items():
        ev = evidence[ref]
        chain = chains[chain_of[ref]]
        regenerated = children.get(ref, 0) > 0 or bool(ev.regenerate_events)
        # A chain's final generation is its latest one, unless the user regenerated that
        # too (its replacement has not arrived): then the chain has no final generation.
        final[ref] = ref == chain.last and not regenerated
        edit_ratio = 0.0
        edit_of[ref] = classify_edit(
            gen.output,
            ev.final_text,
            ratio_min=policy.edit_ratio_min,
            ratio_max=policy.edit_ratio_max,
        )
        # Only a correction or a rewrite is an action: a cosmetic, trim or note edit leaves
        # the output accepted as it was, and makes no pair.
        changed[ref] = edit_of[ref].kind in ("correction", "rewrite")
        if edit_changes_text(gen.output, ev.final_text):
            edit_ratio = edit_of[ref].ratio
        signals[ref] = GenerationSignals(
            edit_ratio=edit_ratio,
            edits=ev.edits,
            final_text=ev.final_text,
            regenerated=regenerated,
            chain_position=position[ref],
            chain_length=len(chain.members),
            copied=ev.copied,
            shared=ev.shared,
            dwell_ms=ev.dwell_ms,
            rating=ev.rating,
            downstream_action=(
                ev.copied or ev.shared or changed[ref] or (outcome == "completed" and final[ref])
            ),
            edit_kind=edit_of[ref].kind,
        )

    builder = _LabelBuilder(policy)
    for ref, gen in by_ref.items():
        sig = signals[ref]
        chain = chains[chain_of[ref]]
        flagged = chain.regenerations >= policy.retry_threshold
        edited = changed[ref]
        substantive_edit = edited  # a correction or rewrite (`changed`), not a touch-up
        completed_final = outcome == "completed" and final[ref]

        if edited:
            builder.add_edit_pair(gen, sig, edit_of[ref])
        action = _strongest_action(sig, policy, edited=edited, completed_final=completed_final)
        if action is not None and ref in parent and not _rated_down(sig):
            # One pair per discarded ancestor. An ancestor that got an action of its own
            # was not plainly discarded, so it is not used as "rejected"; nor is one the
            # user rated better than the accepted one.
            ancestor = parent.get(ref)
            while ancestor is not None:
                if not signals[ancestor].downstream_action and not _rated_above(
                    signals[ancestor], sig
                ):
                    builder.add_regenerate_pair(
                        gen,
                        by_ref[ancestor],
                        sig,
                        signals[ancestor],
                        action=action,
                        high_retry=flagged,
                    )
                ancestor = parent.get(ancestor)
        accepted = (sig.copied or sig.shared) and not substantive_edit and not _rated_down(sig)
        if accepted:
            builder.add_acceptance(gen, sig, evidence[ref].copy_coverage)
        # No duplicates: a copy, share or edit label is stronger than passive acceptance.
        if completed_final and not accepted and not substantive_edit and not _rated_down(sig):
            builder.add_completed(
                gen, sig, outcome_signal=outcome_signal, last_in_session=ref == last_in_session
            )
        if outcome == "abandoned" and ref == last_in_session:
            builder.add_abandoned(
                gen,
                sig,
                chain_regenerations=chain.regenerations,
                by_timeout=outcome_event is None,
            )
        elif (
            outcome == "inactive"
            and ref == last_in_session
            and chain.regenerations > 0
            and not sig.downstream_action
        ):
            # Regenerated, then left without acting on the last answer: a weak negative.
            builder.add_abandoned(
                gen,
                sig,
                chain_regenerations=chain.regenerations,
                by_timeout=True,
                inactive=True,
            )
        if flagged and ref == chain.root:
            builder.add_high_retry(gen, chain, policy.retry_threshold)
        if sig.rating is not None:
            builder.add_rating(gen, sig, evidence[ref].rating_comment)

    return SessionDerivation(
        session=SessionSignals(
            outcome=outcome,
            outcome_signal=outcome_signal,
            retries=sum(chain.regenerations for chain in chains.values()),
            generations=len(by_ref),
        ),
        generations=signals,
        labels=builder.labels,
    )


def _index_generations(generations: list[GenerationRecord]) -> dict[str, GenerationRecord]:
    """Generations by ref in (created_at, ref) order; a repeated ref keeps its first copy."""
    by_ref: dict[str, GenerationRecord] = {}
    for gen in sorted(generations, key=lambda g: (g.created_at, g.ref)):
        by_ref.setdefault(gen.ref, gen)
    return by_ref


def _collect_evidence(
    events: list[EventRecord], evidence: dict[str, _Evidence]
) -> EventRecord | None:
    """Fill `evidence` from the events in one pass; return the winning outcome event."""
    outcome_event: EventRecord | None = None
    outcome_order: tuple[datetime, str] | None = None
    for event in events:
        kind = event.type
        payload = event.payload
        order = (event.timestamp, event.client_id)
        if kind == "session_outcome":
            if payload.get("outcome") in _OUTCOMES and (
                outcome_order is None or order > outcome_order
            ):
                outcome_event, outcome_order = event, order
            continue
        ev = evidence.get(event.generation_ref or "")
        if ev is None:  # no generation ref, or its generation has not arrived yet
            continue
        if kind == "view":
            dwell = _finite_number(payload.get("dwell_ms"))
            if dwell is not None and dwell > 0:
                ev.dwell_ms = min(DWELL_MAX_MS, ev.dwell_ms + round(min(dwell, DWELL_MAX_MS)))
        elif kind == "edit":
            text = payload.get("text")
            if isinstance(text, str):
                ev.edits += 1
                if ev.latest_edit is None or order > ev.latest_edit:
                    ev.latest_edit, ev.final_text = order, text
        elif kind == "copy":
            ev.copied = True
            ev.copy_coverage = max(ev.copy_coverage, _copy_coverage(payload.get("text"), ev))
        elif kind == "share":
            ev.shared = True
        elif kind == "regenerate":
            ev.regenerate_events.append(order)
        elif kind == "rating":
            value = _finite_number(payload.get("value"))
            if value is not None and (ev.latest_rating is None or order > ev.latest_rating):
                ev.latest_rating, ev.rating = order, value
                ev.rating_comment = payload.get("comment") or None
    return outcome_event


def _finite_number(value: Any) -> int | float | None:
    """`value` if it is a JSON number arithmetic can use, else None (missing): booleans,
    NaN, infinities and integers beyond the float range (1 followed by 400 zeros) are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return value if math.isfinite(value) else None
    except OverflowError:  # an int too large to convert to float
        return None


def _copy_coverage(copied_text: Any, ev: _Evidence) -> float:
    """Share of the output that a copy took: 1.0 when the event carries no text.

    Measured against the model output, not the final text, so that the result does not
    depend on whether an edit was seen before the copy in this pass.
    """
    if not isinstance(copied_text, str) or not copied_text:
        return 1.0
    return min(1.0, len(copied_text) / max(1, ev.output_length))


def _link_regenerations(
    by_ref: dict[str, GenerationRecord], evidence: dict[str, _Evidence]
) -> tuple[dict[str, str], dict[str, int]]:
    """Replacement links: child ref -> replaced ref, and the number of children per ref.

    A `replaces` link counts when the replaced generation is known and earlier in
    generation order (so links can never form a cycle). Regenerate events beyond a
    generation's `replaces` children (the latest ones) are matched, in time order, to the
    earliest later generation with the same input, no `replaces` of its own, created at or
    after the event, and not matched yet: clients that send only regenerate events still
    get chains. One bisect per unmatched event, no scan over the events.
    """
    order = {ref: index for index, ref in enumerate(by_ref)}
    parent: dict[str, str] = {}
    children: dict[str, int] = {}
    for ref, gen in by_ref.items():
        replaced = gen.replaces_ref
        if replaced and replaced in order and order[replaced] < order[ref]:
            parent[ref] = replaced
            children[replaced] = children.get(replaced, 0) + 1

    unmatched: list[tuple[tuple[datetime, str], str]] = []
    for ref, ev in evidence.items():
        surplus = len(ev.regenerate_events) - children.get(ref, 0)
        if surplus > 0:
            unmatched.extend((at, ref) for at in sorted(ev.regenerate_events)[-surplus:])
    if not unmatched:
        return parent, children

    # Candidates per input, each list in generation order; matched ones are removed.
    candidates: dict[str, list[tuple[datetime, str]]] = {}
    input_key: dict[str, str] = {}
    for ref, gen in by_ref.items():
        key = json.dumps(gen.input, sort_keys=True, separators=(",", ":"), default=str)
        input_key[ref] = key
        if not gen.replaces_ref:
            candidates.setdefault(key, []).append((gen.created_at, ref))
    for (at, _client_id), ref in sorted(unmatched):
        gen = by_ref[ref]
        pool = candidates.get(input_key[ref])
        if not pool:  # no candidate with this input (yet): the replacement has not arrived
            continue
        start = max(bisect_right(pool, (gen.created_at, ref)), bisect_left(pool, (at, "")))
        if start < len(pool):
            _, child = pool.pop(start)
            parent[child] = ref
            children[ref] = children.get(ref, 0) + 1
    return parent, children


def _build_chains(
    by_ref: dict[str, GenerationRecord],
    evidence: dict[str, _Evidence],
    parent: dict[str, str],
    children: dict[str, int],
) -> tuple[dict[str, _Chain], dict[str, str], dict[str, int]]:
    """Chains by root ref, each generation's root, and its 1-based depth in its chain.

    Parents always precede children in generation order, so one pass suffices. A chain's
    regenerations count each generation's regenerate actions once: the larger of its
    regenerate events and its replacements (a client may send either or both).
    """
    chains: dict[str, _Chain] = {}
    chain_of: dict[str, str] = {}
    position: dict[str, int] = {}
    for ref in by_ref:
        replaced = parent.get(ref)
        if replaced is None:
            chain_of[ref], position[ref] = ref, 1
            chains[ref] = _Chain(members=[ref])
        else:
            chain_of[ref], position[ref] = chain_of[replaced], position[replaced] + 1
            chains[chain_of[ref]].members.append(ref)
        chains[chain_of[ref]].regenerations += max(
            len(evidence[ref].regenerate_events), children.get(ref, 0)
        )
    return chains, chain_of, position


def edit_changes_text(output: str, final_text: str) -> bool:
    """Whether an edit changed the output: not when the final text is the output again, or
    the output with only leading or trailing whitespace added or removed. An edit that
    changes nothing is no action and makes no pair."""
    return final_text != output and final_text.strip() != output.strip()


def _strongest_action(
    sig: GenerationSignals, policy: Policy, *, edited: bool, completed_final: bool
) -> DownstreamAction | None:
    """The strongest downstream action on a generation: share > copy > edit > completed.
    `edited`: an edit changed the text (`edit_changes_text`); a no-op edit is no action."""
    if sig.shared:
        return "share"
    if sig.copied:
        return "copy"
    if edited:
        return "edit_rewrite" if sig.edit_ratio > policy.edit_ratio_max else "edit"
    if completed_final:
        return "completed"
    return None


def _rated_down(sig: GenerationSignals) -> bool:
    """The user's latest rating is below zero: a thumbs down on any signed scale. (A
    positive value says nothing alone: 1 is the worst of a 1-5 scale.)"""
    return sig.rating is not None and sig.rating < 0


def _rated_above(discarded: GenerationSignals, accepted: GenerationSignals) -> bool:
    """Both rated on the product's scale, and the discarded answer higher."""
    return (
        discarded.rating is not None
        and accepted.rating is not None
        and discarded.rating > accepted.rating
    )


def _score(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 4)


def qa_sample_point(key: str) -> float:
    """A label key's fixed point in [0, 1): sha256-based, identical on every run and host."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def regenerate_pair_confidence(
    action: DownstreamAction, dwell_ms: int, *, discarded_rated_down: bool = False
) -> float:
    """Base by the accepted generation's strongest action, plus a capped dwell bonus, plus a
    bonus when the user rated the discarded answer down."""
    reading = min(1.0, max(0, min(dwell_ms, DWELL_MAX_MS)) / REGENERATE_DWELL_FULL_MS)
    rated = REGENERATE_RATED_BONUS if discarded_rated_down else 0.0
    return _score(REGENERATE_BASE[action] + REGENERATE_DWELL_BONUS * reading + rated)


class _LabelBuilder:
    """Builds labels in call order and routes each one to auto-accept or review."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.labels: list[DerivedLabel] = []

    def _add(
        self,
        *,
        key: str,
        kind: LabelKind,
        source: LabelSource,
        rule: str,
        gen: GenerationRecord,
        confidence: float,
        weight: float,
        signals: dict[str, Any],
        forced_reason: ReviewReason | None = None,
        other: GenerationRecord | None = None,
        chosen: str | None = None,
        rejected: str | None = None,
        completion: str | None = None,
        label: bool | None = None,
    ) -> None:
        policy = self.policy
        prior = _score(confidence)
        right, n = policy.verdicts.get((rule, band_of(prior)), (0, 0))
        # People's verdicts on this rule and band calibrate its heuristic (Beta posterior).
        confidence = _score(calibrated(prior, right, n)) if n else prior
        # Precedence: a rule that must be reviewed, a rule the collapse guard watches, then
        # measured precision below the target (or, before enough verdicts, confidence below
        # the threshold), then the QA sample, larger where the band is little known.
        reason: ReviewReason | None = forced_reason
        if reason is None and rule in policy.guarded_rules:
            reason = "low_confidence"
        if reason is None:
            if n >= policy.min_verdicts:
                if wilson(right, n)[0] < policy.target_precision:
                    reason = "low_confidence"
            elif confidence < policy.confidence_threshold:
                reason = "low_confidence"
        rate = qa_rate(policy.qa_sample_rate, right, n, policy.min_verdicts)
        if reason is None and qa_sample_point(key) < rate:
            reason = "qa_sample"
        self.labels.append(
            DerivedLabel(
                key=key,
                kind=kind,
                source=source,
                rule=rule,
                generation_ref=gen.ref,
                other_generation_ref=other.ref if other is not None else None,
                prompt=gen.input,
                chosen=chosen,
                rejected=rejected,
                completion=completion,
                label=label,
                confidence=confidence,
                weight=weight,
                needs_review=reason is not None,
                review_reason=reason,
                signals=signals,
                rule_confidence=prior,
            )
        )

    def add_edit_pair(self, gen: GenerationRecord, sig: GenerationSignals, edit: EditClass) -> None:
        """chosen = final edited text, rejected = model output; `edit` is a correction or a
        rewrite (feedback/edits.py). A correction's confidence is the classifier's; a
        rewrite always goes to review."""
        policy = self.policy
        forced: ReviewReason | None = None
        if edit.kind == "rewrite":
            rule, confidence, forced = "edit_rewrite", EDIT_REWRITE, "low_confidence"
        else:
            rule, confidence = "edit_correction", edit.confidence
        self._add(
            key=f"edit:{gen.ref}",
            kind="preference_pair",
            source="edit",
            rule=rule,
            gen=gen,
            confidence=confidence,
            weight=policy.weight_edit,
            forced_reason=forced,
            chosen=sig.final_text,
            rejected=gen.output,
            signals={
                "edit_ratio": sig.edit_ratio,
                "edits": sig.edits,
                "band": [policy.edit_ratio_min, policy.edit_ratio_max],
                "edit_kind": edit.kind,
                "edit_changes": list(edit.changes),
                "content": edit.content,
            },
        )

    def add_regenerate_pair(
        self,
        accepted: GenerationRecord,
        discarded: GenerationRecord,
        accepted_sig: GenerationSignals,
        discarded_sig: GenerationSignals,
        *,
        action: DownstreamAction,
        high_retry: bool,
    ) -> None:
        """chosen = the accepted later output (as generated), rejected = a discarded one."""
        self._add(
            key=f"regen:{discarded.ref}>{accepted.ref}",
            kind="preference_pair",
            source="regenerate",
            rule="regenerate_then_action",
            gen=accepted,
            other=discarded,
            confidence=regenerate_pair_confidence(
                action, accepted_sig.dwell_ms, discarded_rated_down=_rated_down(discarded_sig)
            ),
            weight=self.policy.weight_regenerate,
            forced_reason="high_retry" if high_retry else None,
            chosen=accepted.output,
            rejected=discarded.output,
            signals={
                "action": action,
                "dwell_ms": accepted_sig.dwell_ms,
                "rejected_dwell_ms": discarded_sig.dwell_ms,
                "rejected_rated_down": _rated_down(discarded_sig),
                "chosen_position": accepted_sig.chain_position,
                "rejected_position": discarded_sig.chain_position,
                "chain_length": accepted_sig.chain_length,
            },
        )

    def add_acceptance(
        self, gen: GenerationRecord, sig: GenerationSignals, coverage: float
    ) -> None:
        """Copy or share without a substantive edit: a KTO positive on the model output."""
        if sig.shared:
            source: LabelSource = "share"
            confidence = SHARE_ACCEPT + (SHARE_AND_COPY_BONUS if sig.copied else 0.0)
        else:
            source = "copy"
            confidence = COPY_ACCEPT_PARTIAL + (COPY_ACCEPT_FULL - COPY_ACCEPT_PARTIAL) * coverage
        if sig.regenerated:
            confidence -= ACCEPT_THEN_REGENERATED_PENALTY
        self._add(
            key=f"accept:{gen.ref}",
            kind="completion",
            source=source,
            rule=f"{source}_accept",
            gen=gen,
            confidence=confidence,
            weight=self.policy.weight_copy_share,
            completion=gen.output,
            label=True,
            signals={
                "copied": sig.copied,
                "shared": sig.shared,
                "copy_coverage": round(coverage, 4) if sig.copied else None,
                "regenerated": sig.regenerated,
                "edit_ratio": sig.edit_ratio,
            },
        )

    def add_completed(
        self,
        gen: GenerationRecord,
        sig: GenerationSignals,
        *,
        outcome_signal: str | None,
        last_in_session: bool,
    ) -> None:
        """Passive acceptance of a final generation of a completed session: sure only when
        the answer was also read, the session said what it achieved, and it was the last."""
        confidence = COMPLETED_BASE
        if last_in_session:
            confidence += COMPLETED_LAST_IN_SESSION_BONUS
        if outcome_signal:
            confidence += COMPLETED_WITH_SIGNAL_BONUS
        if sig.dwell_ms >= READ_MS:
            confidence += COMPLETED_READ_BONUS
        self._add(
            key=f"outcome:{gen.ref}",
            kind="completion",
            source="outcome",
            rule="session_completed",
            gen=gen,
            confidence=confidence,
            weight=self.policy.weight_completed,
            completion=gen.output,
            label=True,
            signals={
                "outcome_signal": outcome_signal,
                "last_in_session": last_in_session,
                "dwell_ms": sig.dwell_ms,
            },
        )

    def add_abandoned(
        self,
        gen: GenerationRecord,
        sig: GenerationSignals,
        *,
        chain_regenerations: int,
        by_timeout: bool,
        inactive: bool = False,
    ) -> None:
        """A negative candidate on the session's last generation; always reviewed.

        `inactive`: the session timed out in a project without outcome events, so only
        the regenerations before leaving speak against the answer (weaker).
        """
        confidence = ABANDONED_BASE + ABANDONED_PER_REGENERATION * min(
            chain_regenerations, ABANDONED_MAX_REGENERATIONS
        )
        if sig.downstream_action:
            confidence -= ABANDONED_AFTER_ACTION_PENALTY
        if inactive:
            confidence -= INACTIVE_AFTER_RETRY_PENALTY
        self._add(
            key=f"outcome:{gen.ref}",
            kind="completion",
            source="outcome",
            rule="session_abandoned",
            gen=gen,
            confidence=confidence,
            weight=self.policy.weight_abandoned,
            forced_reason="abandoned",
            completion=gen.output,
            label=False,
            signals={
                "by_timeout": by_timeout,
                "inactive": inactive,
                "chain_regenerations": chain_regenerations,
                "downstream_action": sig.downstream_action,
            },
        )

    def add_high_retry(self, root: GenerationRecord, chain: _Chain, threshold: int) -> None:
        """A flag on the chain (keyed by its root): always reviewed, never training data."""
        confidence = 1.0 - 0.5 ** (chain.regenerations - threshold + 1)
        self._add(
            key=f"retry:{root.ref}",
            kind="high_retry",
            source="regenerate",
            rule="retry_chain",
            gen=root,
            confidence=confidence,
            weight=self.policy.weight_regenerate,
            forced_reason="high_retry",
            signals={
                "regenerations": chain.regenerations,
                "threshold": threshold,
                "chain": list(chain.members),
            },
        )

    def add_rating(
        self, gen: GenerationRecord, sig: GenerationSignals, comment: str | None
    ) -> None:
        """The user's explicit rating, kept apart; the scale is the product's own."""
        self._add(
            key=f"rating:{gen.ref}",
            kind="rating",
            source="rating",
            rule="explicit_rating",
            gen=gen,
            confidence=RATING,
            weight=self.policy.weight_rating,
            completion=gen.output,
            signals={"value": sig.rating, "comment": comment},
        )
