"""demo.traffic: deterministic simulated traffic. Pure Python: no Django, no database."""

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rapidfuzz.distance import Indel

from demo.traffic import (
    ABANDONED_SENT_RATE,
    BEHAVIOURS,
    COPY_BAD_RATE,
    CORRECTION_MAX,
    CORRECTION_MIN,
    COSMETIC_MAX,
    EDIT_KINDS,
    EVENT_TYPES,
    FEATURES,
    HARD_BEHAVIOURS,
    LATER_EDIT_RATE,
    NOOP_EDIT_RATE,
    NOTE_EDIT_RATE,
    RATE_BAD_RATE,
    RATE_GOOD_RATE,
    REGENERATE_GOOD_RATE,
    REWRITE_MIN,
    SILENT_OUTCOME_RATE,
    TASTE_EDIT_RATE,
    TOKEN_FIX_RATE,
    TOKEN_FIXABLE,
    TRIM_EDIT_RATE,
    SimulatedTraffic,
    simulate_traffic,
)

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
COMMON = {"id", "type", "timestamp", "session_id", "user_id"}
REQUIRED = {
    "generation": {"generation_id", "input", "output", "model", "replaces", "metadata"},
    "edit": {"generation_id", "text"},
    "regenerate": {"generation_id"},
    "copy": {"generation_id"},
    "share": {"generation_id"},
    "view": {"generation_id", "dwell_ms"},
    "rating": {"generation_id", "value"},
    "session_outcome": {"outcome", "signal"},
}
OPTIONAL = {"copy": {"text"}, "rating": {"comment"}}
EDIT_BEHAVIOURS = {"edit_cosmetic", "edit_correction", "edit_rewrite"}


@pytest.fixture(scope="module")
def traffic() -> SimulatedTraffic:
    return simulate_traffic(sessions=400, seed=7, start=START, batch_size=50)


@pytest.fixture(scope="module")
def events(traffic: SimulatedTraffic) -> list[dict[str, Any]]:
    """Distinct events, first copies, in timestamp order."""
    first: dict[str, dict[str, Any]] = {}
    for batch in traffic.batches:
        for event in batch:
            first.setdefault(event["id"], event)
    return sorted(first.values(), key=lambda e: e["timestamp"])


@pytest.fixture(scope="module")
def generations(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["generation_id"]: e for e in events if e["type"] == "generation"}


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def _ids(result: SimulatedTraffic, key: str) -> set[str]:
    return {e[key] for batch in result.batches for e in batch if e.get(key)}


def _chain_lengths(generations: dict[str, dict[str, Any]]) -> Counter[int]:
    """Regenerations per prompt: the length of each chain of `replaces` links."""
    replaced_by = {g["replaces"]: gid for gid, g in generations.items() if g["replaces"]}
    lengths: Counter[int] = Counter()
    for gid, generation in generations.items():
        if generation["replaces"] is None:
            length = 0
            while gid in replaced_by:
                gid = replaced_by[gid]
                length += 1
            lengths[length] += 1
    return lengths


# --- determinism and ids ------------------------------------------------------------------


def test_same_arguments_give_the_same_traffic() -> None:
    first = simulate_traffic(sessions=60, seed=3, start=START, batch_size=40)
    second = simulate_traffic(sessions=60, seed=3, start=START, batch_size=40)
    assert first == second
    assert first.batches and first.events > 60


def test_naive_start_is_taken_as_utc() -> None:
    aware = simulate_traffic(sessions=10, seed=4, start=START)
    naive = simulate_traffic(sessions=10, seed=4, start=START.replace(tzinfo=None))
    assert aware == naive


def test_default_start_is_now() -> None:
    before = datetime.now(UTC)
    result = simulate_traffic(sessions=20, seed=5)
    after = datetime.now(UTC)
    stamps = [_parse(e["timestamp"]) for batch in result.batches for e in batch]
    assert stamps
    assert all(before - timedelta(days=14) <= stamp < after for stamp in stamps)


@pytest.mark.parametrize("key", ["id", "session_id", "generation_id", "user_id"])
def test_other_seed_or_prefix_gives_disjoint_ids(key: str) -> None:
    base = simulate_traffic(sessions=30, seed=1, start=START)
    other_seed = simulate_traffic(sessions=30, seed=2, start=START)
    other_prefix = simulate_traffic(sessions=30, seed=1, start=START, id_prefix="demo")
    assert _ids(base, key)
    assert not _ids(base, key) & _ids(other_seed, key)
    assert not _ids(base, key) & _ids(other_prefix, key)


def test_ids_embed_prefix_and_seed(traffic: SimulatedTraffic) -> None:
    ids = _ids(traffic, "id")
    assert all(i.startswith("sim-7-") for i in ids)
    assert len(ids) == traffic.events


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        simulate_traffic(sessions=-1)
    with pytest.raises(ValueError):
        simulate_traffic(sessions=1, batch_size=0)


def test_zero_sessions() -> None:
    assert simulate_traffic(sessions=0, start=START) == SimulatedTraffic([], 0, 0, 0, 0)


# --- event format (docs/ingestion.md) --------------------------------------------


def test_every_event_is_valid(events: list[dict[str, Any]]) -> None:
    generation_ids = {e["generation_id"] for e in events if e["type"] == "generation"}
    for event in events:
        kind = event["type"]
        assert kind in EVENT_TYPES
        keys = set(event)
        assert COMMON | REQUIRED[kind] <= keys, event
        assert keys <= COMMON | REQUIRED[kind] | OPTIONAL.get(kind, set()), event
        for key in ("id", "session_id", "user_id"):
            assert isinstance(event[key], str) and 0 < len(event[key]) <= 255
        assert event["timestamp"].endswith("Z")
        stamp = _parse(event["timestamp"])
        assert stamp.utcoffset() == timedelta(0)
        assert START - timedelta(days=14) <= stamp < START
        if kind != "session_outcome":
            assert event["generation_id"] in generation_ids
        if kind == "generation":
            _check_generation(event, generation_ids)
        elif kind in ("edit", "copy") and "text" in event:
            assert isinstance(event["text"], str) and event["text"]
        elif kind == "view":
            assert type(event["dwell_ms"]) is int and event["dwell_ms"] >= 0
        elif kind == "rating":
            assert event["value"] in (1, -1) and type(event["value"]) is int
            assert isinstance(event.get("comment", ""), str)
        elif kind == "session_outcome":
            assert event["outcome"] in ("completed", "abandoned")
            assert isinstance(event["signal"], str) and event["signal"]


def _check_generation(event: dict[str, Any], generation_ids: set[str]) -> None:
    conversation = event["input"]
    if isinstance(conversation, str):
        assert conversation
    else:
        assert isinstance(conversation, list) and conversation
        for message in conversation:
            assert set(message) == {"role", "content"}
            assert message["role"] in ("system", "user", "assistant")
            assert isinstance(message["content"], str) and message["content"]
        assert conversation[-1]["role"] == "user"
    assert isinstance(event["output"], str)
    assert 200 <= len(event["output"]) <= 1500
    assert isinstance(event["model"], str) and event["model"]
    assert event["replaces"] is None or event["replaces"] in generation_ids
    metadata = event["metadata"]
    assert metadata["feature"] in FEATURES
    sim = metadata["sim"]
    assert isinstance(sim["good"], bool)
    assert sim["behaviour"] in BEHAVIOURS
    assert (sim["flaw"] is None) == sim["good"]


def test_sessions_and_users(traffic: SimulatedTraffic, events: list[dict[str, Any]]) -> None:
    assert traffic.sessions == 400
    users_by_session = defaultdict(set)
    for event in events:
        users_by_session[event["session_id"]].add(event["user_id"])
    assert len(users_by_session) == 400
    assert all(len(users) == 1 for users in users_by_session.values())
    sessions_per_user = Counter(next(iter(u)) for u in users_by_session.values())
    assert max(sessions_per_user.values()) > 1  # returning users


def test_timestamps_are_unique_and_causal(
    events: list[dict[str, Any]], generations: dict[str, dict[str, Any]]
) -> None:
    assert len({e["timestamp"] for e in events}) == len(events)
    by_session = defaultdict(list)
    for event in events:
        by_session[event["session_id"]].append(event)
    for session_events in by_session.values():
        shown: set[str] = set()
        regenerated: set[str] = set()
        for event in session_events:  # timestamp order
            if event["type"] == "generation":
                if event["replaces"] is not None:
                    assert event["replaces"] in regenerated
                shown.add(event["generation_id"])
            elif event["type"] == "session_outcome":
                assert event is session_events[-1]
            else:
                assert event["generation_id"] in shown
                if event["type"] == "regenerate":
                    regenerated.add(event["generation_id"])
        span = _parse(session_events[-1]["timestamp"]) - _parse(session_events[0]["timestamp"])
        assert span < timedelta(hours=4)
    starts = sorted(_parse(s[0]["timestamp"]) for s in by_session.values())
    assert starts[-1] - starts[0] > timedelta(days=10)  # spread over the window


# --- delivery -----------------------------------------------------------------------------


def test_batch_size_is_respected(traffic: SimulatedTraffic) -> None:
    sizes = [len(batch) for batch in traffic.batches]
    assert all(0 < size <= 50 for size in sizes)
    first_short = next(i for i, size in enumerate(sizes) if size < 50)
    assert len(sizes) - first_short <= 6  # only a short tail of held-back events


def test_duplicates_match_the_batches(traffic: SimulatedTraffic) -> None:
    first_batch: dict[str, int] = {}
    first_copy: dict[str, dict[str, Any]] = {}
    replays = 0
    for index, batch in enumerate(traffic.batches):
        seen_here = set()
        for event in batch:
            assert event["id"] not in seen_here  # a replay goes into a later batch
            seen_here.add(event["id"])
            if event["id"] in first_batch:
                replays += 1
                assert first_batch[event["id"]] < index
                assert event == first_copy[event["id"]]
                assert event is not first_copy[event["id"]]
            else:
                first_batch[event["id"]] = index
                first_copy[event["id"]] = event
    assert replays == traffic.duplicates
    assert len(first_batch) == traffic.events
    assert 0.01 < traffic.duplicates / traffic.events < 0.06


def test_late_count_matches_the_batches(traffic: SimulatedTraffic) -> None:
    """Late: the first copy arrives after a batch that held a later event."""
    late, newest_before, seen = 0, None, set()
    for batch in traffic.batches:
        fresh = [e for e in batch if e["id"] not in seen]
        seen.update(e["id"] for e in fresh)
        stamps = [_parse(e["timestamp"]) for e in fresh]
        if newest_before is not None:
            late += sum(stamp < newest_before for stamp in stamps)
        if stamps:
            newest_before = max([*stamps, *([newest_before] if newest_before else [])])
    assert late == traffic.late
    assert 0.02 < traffic.late / traffic.events < 0.09


def test_non_late_events_keep_timestamp_order(traffic: SimulatedTraffic) -> None:
    """Events that are not late are sent in timestamp order (batch by batch)."""
    seen, newest_before, previous_max = set(), None, None
    for batch in traffic.batches:
        fresh = [e for e in batch if e["id"] not in seen]
        seen.update(e["id"] for e in fresh)
        on_time = [_parse(e["timestamp"]) for e in fresh]
        if newest_before is not None:
            on_time = [s for s in on_time if s >= newest_before]
        if on_time and previous_max is not None:
            assert min(on_time) > previous_max
        if on_time:
            previous_max = max(on_time)
            newest_before = previous_max


def test_some_actions_are_sent_before_their_generation(traffic: SimulatedTraffic) -> None:
    position: dict[str, int] = {}
    ordered = [event for batch in traffic.batches for event in batch]
    for index, event in enumerate(ordered):
        if event["type"] == "generation":
            position.setdefault(event["generation_id"], index)
    early_edits = [
        event
        for index, event in enumerate(ordered)
        if event["type"] == "edit" and index < position[event["generation_id"]]
    ]
    assert early_edits


# --- behaviours and ground truth ----------------------------------------------------------


def test_edit_buckets_verified_with_rapidfuzz(
    events: list[dict[str, Any]], generations: dict[str, dict[str, Any]]
) -> None:
    edits = defaultdict(list)
    for event in events:
        if event["type"] == "edit":
            edits[event["generation_id"]].append(event["text"])
    buckets = Counter()
    for gid, generation in generations.items():
        sim = generation["metadata"]["sim"]
        behaviour = sim["behaviour"]
        if behaviour not in EDIT_BEHAVIOURS:
            assert gid not in edits
            assert "edit_ratio" not in sim
            continue
        final = edits[gid][-1]  # events are in timestamp order
        ratio = Indel.normalized_distance(generation["output"], final)
        assert sim["edit_ratio"] == round(ratio, 4)
        if behaviour == "edit_cosmetic":
            assert 0 < ratio < COSMETIC_MAX
        elif behaviour == "edit_correction":
            assert CORRECTION_MIN <= ratio <= CORRECTION_MAX
        else:
            assert ratio > REWRITE_MIN
        buckets[behaviour] += 1
        assert len(edits[gid]) <= 3
    assert set(buckets) == EDIT_BEHAVIOURS
    assert any(len(texts) > 1 for texts in edits.values())  # successive edits


def test_all_behaviours_occur_with_plausible_frequencies(
    generations: dict[str, dict[str, Any]],
) -> None:
    final = Counter(
        g["metadata"]["sim"]["behaviour"]
        for g in generations.values()
        if g["metadata"]["sim"]["behaviour"] != "regenerated"
    )
    assert set(final) | {"regenerated"} == set(BEHAVIOURS)
    total = sum(final.values())
    assert final["view"] / total > 0.15  # passive acceptance is common
    assert final["edit_rewrite"] < final["edit_correction"]
    good = [g["metadata"]["sim"]["good"] for g in generations.values()]
    assert 0.45 < sum(good) / len(good) < 0.8


def test_regenerate_chains(
    events: list[dict[str, Any]], generations: dict[str, dict[str, Any]]
) -> None:
    lengths = _chain_lengths(generations)
    assert set(lengths) <= {0, 1, 2, 3, 4}
    assert lengths[1] > lengths[2] > 0
    assert lengths[3] + lengths[4] > 0  # high retry: 3+ regenerations in a row
    regenerated = {e["generation_id"] for e in events if e["type"] == "regenerate"}
    replaced = {g["replaces"] for g in generations.values() if g["replaces"]}
    assert regenerated == replaced
    for gid in regenerated:
        assert generations[gid]["metadata"]["sim"]["behaviour"] == "regenerated"
    # Some chains end with nothing at all after the last regeneration.
    assert any(
        g["replaces"] and g["metadata"]["sim"]["behaviour"] == "none" for g in generations.values()
    )


def test_session_outcomes(events: list[dict[str, Any]]) -> None:
    sessions = {e["session_id"] for e in events}
    outcomes = {e["session_id"]: e for e in events if e["type"] == "session_outcome"}
    kinds = Counter(e["outcome"] for e in outcomes.values())
    assert kinds["completed"] > kinds["abandoned"] > 0
    silent = sessions - set(outcomes)
    assert 0.1 < len(silent) / len(sessions) < 0.5  # left to the inactivity timeout
    signals = Counter(e["signal"] for e in outcomes.values())
    assert signals["tests_passed"] > 0 and signals["user_closed"] > 0


def test_ratings_are_a_minority(events: list[dict[str, Any]]) -> None:
    kinds = Counter(e["type"] for e in events)
    assert 0 < kinds["rating"] < 0.2 * kinds["generation"]
    assert kinds["view"] > kinds["copy"] > kinds["share"] > 0


def test_prompts_and_outputs_are_varied(generations: dict[str, dict[str, Any]]) -> None:
    values = list(generations.values())
    outputs = [g["output"] for g in values]
    assert len(set(outputs)) > 0.95 * len(outputs)
    assert {g["metadata"]["feature"] for g in values} == set(FEATURES)
    assert len({g["model"] for g in values}) >= 3
    inputs = [g["input"] for g in values]
    assert any(isinstance(i, str) for i in inputs)
    assert any(isinstance(i, list) and i[0]["role"] == "system" for i in inputs)
    assert any(isinstance(i, list) and any(m["role"] == "assistant" for m in i) for i in inputs)
    assert any("```python" in o for o in outputs) and any("```sql" in o for o in outputs)
    flaws = Counter(g["metadata"]["sim"]["flaw"] for g in values)
    assert {"truncated", "wrong_facts", "wrong_tone", "buggy_code"} <= set(flaws)


# --- harder traffic (hard=True): behaviours at their documented rates ---------------------

HARD_KEYS = {"edit_kind", "final_good", "fix", "copy_reason", "edit_session", "session_outcome"}


@pytest.fixture(scope="module")
def hard_events() -> list[dict[str, Any]]:
    result = simulate_traffic(sessions=600, seed=5, start=START, batch_size=200, hard=True)
    first: dict[str, dict[str, Any]] = {}
    for batch in result.batches:
        for event in batch:
            first.setdefault(event["id"], event)
    return sorted(first.values(), key=lambda e: e["timestamp"])


@pytest.fixture(scope="module")
def hard_generations(hard_events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["generation_id"]: e for e in hard_events if e["type"] == "generation"}


@pytest.fixture(scope="module")
def hard_edits(hard_events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    edits = defaultdict(list)
    for event in hard_events:
        if event["type"] == "edit":
            edits[event["generation_id"]].append(event)
    return edits


def _sim(generation: dict[str, Any]) -> dict[str, Any]:
    return generation["metadata"]["sim"]


def _final(generations: dict[str, dict[str, Any]], good: bool | None = None) -> list[dict]:
    """Ground truth of final (not regenerated) generations, optionally of one quality."""
    return [
        _sim(g)
        for g in generations.values()
        if _sim(g)["behaviour"] != "regenerated" and good in (None, _sim(g)["good"])
    ]


def _near(count: int, total: int, rate: float, tolerance: float) -> None:
    assert total > 50
    assert abs(count / total - rate) <= tolerance, (count, total, rate)


def test_easy_traffic_has_no_hard_ground_truth(generations: dict[str, dict[str, Any]]) -> None:
    assert not any(HARD_KEYS & set(_sim(g)) for g in generations.values())
    assert simulate_traffic(sessions=40, seed=3, start=START) == simulate_traffic(
        sessions=40, seed=3, start=START, hard=False
    )


def test_hard_traffic_is_deterministic() -> None:
    first = simulate_traffic(sessions=50, seed=9, start=START, hard=True)
    assert first == simulate_traffic(sessions=50, seed=9, start=START, hard=True)
    assert first != simulate_traffic(sessions=50, seed=9, start=START)


def test_hard_ground_truth_is_complete(hard_generations: dict[str, dict[str, Any]]) -> None:
    for generation in hard_generations.values():
        sim = _sim(generation)
        assert sim["behaviour"] in BEHAVIOURS + HARD_BEHAVIOURS
        assert sim["session_outcome"] in ("completed", "abandoned")
        if sim["behaviour"] != "regenerated":
            assert sim["edit_kind"] in (None, *EDIT_KINDS)
            assert isinstance(sim["final_good"], bool)
            assert (sim["edit_kind"] is None) == ("edit_ratio" not in sim)


def test_good_answers_are_regenerated_for_variety(
    hard_generations: dict[str, dict[str, Any]],
) -> None:
    def position(generation: dict[str, Any]) -> int:
        n = 1
        while generation["replaces"] is not None:
            generation, n = hard_generations[generation["replaces"]], n + 1
        return n

    good = [g for g in hard_generations.values() if _sim(g)["good"] and position(g) < 5]
    regenerated = sum(_sim(g)["behaviour"] == "regenerated" for g in good)
    _near(regenerated, len(good), REGENERATE_GOOD_RATE, 0.04)


def test_bad_answers_are_copied(
    hard_events: list[dict[str, Any]], hard_generations: dict[str, dict[str, Any]]
) -> None:
    bad = _final(hard_generations, good=False)
    copied = [s for s in bad if s.get("copy_reason") == "bug_report"]
    _near(len(copied), len(bad), COPY_BAD_RATE, 0.05)
    copies = {e["generation_id"] for e in hard_events if e["type"] == "copy"}
    marked = {gid for gid, g in hard_generations.items() if _sim(g).get("copy_reason")}
    assert marked <= copies
    assert all(not _sim(hard_generations[gid])["good"] for gid in marked)


def test_one_token_fixes_are_real_corrections_with_a_tiny_ratio(
    hard_generations: dict[str, dict[str, Any]], hard_edits: dict[str, list[dict[str, Any]]]
) -> None:
    fixable = [s for s in _final(hard_generations, good=False) if s["flaw"] in TOKEN_FIXABLE]
    fixed = [s for s in fixable if s["behaviour"] == "edit_token_fix"]
    _near(len(fixed), len(fixable), TOKEN_FIX_RATE, 0.06)
    kinds = set()
    for gid, generation in hard_generations.items():
        sim = _sim(generation)
        if sim["behaviour"] != "edit_token_fix":
            continue
        final = hard_edits[gid][-1]["text"]
        assert final != generation["output"]
        assert Indel.normalized_distance(generation["output"], final) < COSMETIC_MAX
        assert (sim["edit_kind"], sim["final_good"], sim["good"]) == ("correction", True, False)
        kinds.add(sim["fix"])
    assert kinds == {"code", "number", "name_or_date"}


@pytest.mark.parametrize(
    ("behaviour", "kind", "rate"),
    [
        ("edit_taste", "taste", TASTE_EDIT_RATE),
        ("edit_trim", "trim", TRIM_EDIT_RATE),
        ("edit_note", "note", NOTE_EDIT_RATE),
    ],
)
def test_fine_answers_edited_to_taste_keep_their_quality(
    hard_generations: dict[str, dict[str, Any]],
    hard_edits: dict[str, list[dict[str, Any]]],
    behaviour: str,
    kind: str,
    rate: float,
) -> None:
    good = _final(hard_generations, good=True)
    _near(sum(s["behaviour"] == behaviour for s in good), len(good), rate, 0.035)
    for gid, generation in hard_generations.items():
        sim = _sim(generation)
        if sim["behaviour"] == behaviour:
            assert (sim["edit_kind"], sim["final_good"], sim["good"]) == (kind, True, True)
            final = hard_edits[gid][-1]["text"]
            assert final != generation["output"]
            if kind == "trim":
                assert generation["output"].startswith(final.rstrip("."))
            if kind == "note":
                assert generation["output"] in final


def test_edits_that_change_nothing(
    hard_generations: dict[str, dict[str, Any]], hard_edits: dict[str, list[dict[str, Any]]]
) -> None:
    final = _final(hard_generations)
    _near(sum(s["behaviour"] == "edit_noop" for s in final), len(final), NOOP_EDIT_RATE, 0.025)
    noops = [gid for gid, g in hard_generations.items() if _sim(g)["behaviour"] == "edit_noop"]
    for gid in noops:
        sim = _sim(hard_generations[gid])
        assert (sim["edit_kind"], sim["final_good"]) == ("noop", sim["good"])
        assert all(e["text"] == hard_generations[gid]["output"] for e in hard_edits[gid])


def test_some_users_come_back_later_to_edit(
    hard_events: list[dict[str, Any]],
    hard_generations: dict[str, dict[str, Any]],
    hard_edits: dict[str, list[dict[str, Any]]],
) -> None:
    last_event = {}
    for event in hard_events:
        last_event.setdefault(event["session_id"], event["timestamp"])
        last_event[event["session_id"]] = max(last_event[event["session_id"]], event["timestamp"])
    edited = [gid for gid, g in hard_generations.items() if _sim(g).get("edit_kind")]
    later = [gid for gid in edited if _sim(hard_generations[gid]).get("edit_session") == "later"]
    _near(len(later), len(edited), LATER_EDIT_RATE, 0.04)
    for gid in edited:
        generation = hard_generations[gid]
        sessions = {e["session_id"] for e in hard_edits[gid]}
        assert sessions, gid
        if gid in later:
            (session,) = sessions
            assert session.startswith(generation["session_id"] + "-later")
            assert all(e["user_id"] == generation["user_id"] for e in hard_edits[gid])
            origin = generation["session_id"]
            assert min(e["timestamp"] for e in hard_edits[gid]) > max(
                e["timestamp"] for e in hard_events if e["session_id"] == origin
            )
        else:
            assert sessions == {generation["session_id"]}


def test_outcomes_have_ground_truth_and_many_are_never_sent(
    hard_events: list[dict[str, Any]], hard_generations: dict[str, dict[str, Any]]
) -> None:
    sent = {e["session_id"]: e["outcome"] for e in hard_events if e["type"] == "session_outcome"}
    truth: dict[str, tuple[str, bool]] = {}
    for generation in hard_generations.values():
        sim = _sim(generation)
        pair = (sim["session_outcome"], sim["outcome_sent"])
        assert truth.setdefault(generation["session_id"], pair) == pair  # one per session
    for session, (outcome, was_sent) in truth.items():
        assert sent.get(session) == (outcome if was_sent else None)
    completed = [s for s, (o, _) in truth.items() if o == "completed"]
    abandoned = [s for s, (o, _) in truth.items() if o == "abandoned"]
    _near(sum(s not in sent for s in completed), len(completed), SILENT_OUTCOME_RATE, 0.06)
    _near(sum(s in sent for s in abandoned), len(abandoned), ABANDONED_SENT_RATE, 0.1)


def test_a_product_that_never_sends_outcomes() -> None:
    result = simulate_traffic(sessions=80, seed=2, start=START, hard=True, silent_outcome_rate=1)
    events = [e for batch in result.batches for e in batch]
    assert not [e for e in events if e["type"] == "session_outcome" and e["outcome"] == "completed"]
    assert any(
        e["type"] == "generation" and _sim(e)["session_outcome"] == "completed" for e in events
    )
    with pytest.raises(ValueError):
        simulate_traffic(sessions=1, hard=True, silent_outcome_rate=1.5)


def test_users_rate_rarely_and_mostly_bad_answers(
    hard_events: list[dict[str, Any]], hard_generations: dict[str, dict[str, Any]]
) -> None:
    rated = {e["generation_id"] for e in hard_events if e["type"] == "rating"}
    good = [gid for gid, g in hard_generations.items() if _sim(g)["good"]]
    bad = [gid for gid, g in hard_generations.items() if not _sim(g)["good"]]
    _near(sum(gid in rated for gid in good), len(good), RATE_GOOD_RATE, 0.015)
    _near(sum(gid in rated for gid in bad), len(bad), RATE_BAD_RATE, 0.03)
