"""Ingestion and the session API answer every bad input with a 4xx or a per-event error
naming the field, store the rest of the batch, and read back whatever they accepted
(issue 9; the rules are in docs/ingestion.md).

Bodies are written as raw JSON here: NaN, 1e400 or a lone surrogate escape are exactly what
real clients send, and what a JSON renderer would refuse to produce for the test.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback import event_schema, labelling
from feedback.models import Event, Generation, Session
from tests.conftest import token_client
from tests.factories import event, generation

URL = "/api/v1/events"
pytestmark = pytest.mark.django_db
LITERAL = "@@literal@@"  # replaced by raw JSON text in the body


def post_raw(client, events: list[Any], literal: str | None = None, **extra):
    body = json.dumps({"events": events})
    if literal is not None:
        body = body.replace(json.dumps(LITERAL), literal)
    return client.post(URL, data=body, content_type="application/json", **extra)


def session_url(session_id: str, project: str = "acme") -> str:
    return f"/api/v1/sessions/{quote(session_id, safe='')}?project={quote(project, safe='')}"


def rejected_fields(response) -> dict[str, str]:
    """The one rejected event's errors, checking the rest of the batch was accepted."""
    assert response.status_code == 207, response.content[:500]
    body = response.json()
    assert body["rejected"] == 1, body
    return body["errors"][0]["errors"]


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for step in parents:
        data = data[int(step)] if isinstance(data, list) else data[step]
    if isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


# --- 1. NUL and lone surrogates ----------------------------------------------------------

TEXT_FIELDS = [
    ("generation", "output"),
    ("generation", "input"),
    ("generation", "input.0.content"),
    ("generation", "metadata.feature"),
    ("generation", "metadata.nested.0.deep"),
    ("edit", "text"),
    ("copy", "text"),
    ("rating", "comment"),
]


def typed(kind: str, gen: str = "g1") -> dict[str, Any]:
    if kind == "generation":
        return generation(gen, metadata={"feature": "x", "nested": [{"deep": "y"}]})
    if kind == "edit":
        return event("edit", generation_id=gen, text="fixed")
    if kind == "copy":
        return event("copy", generation_id=gen, text="copied")
    if kind == "rating":
        return event("rating", generation_id=gen, value=1, comment="ok")
    return event(kind, generation_id=gen)


def stored_text(client_id: str, path: str) -> Any:
    data = Event.objects.get(client_id=client_id).payload
    for step in path.split("."):
        data = data[int(step)] if isinstance(data, list) else data[step]
    return data


@pytest.mark.parametrize(("kind", "path"), TEXT_FIELDS)
@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("a\x00b", "a\ufffdb"),
        ("cut emoji \ud83d", "cut emoji \ufffd"),
        ("\udfff\ud800", "\ufffd\ufffd"),  # reversed: two lone halves, not a pair
        ("a pair \ud83d\ude00 stays", "a pair \U0001f600 stays"),
    ],
)
def test_nul_and_lone_surrogates_in_texts_become_replacement_characters(
    ingest_client, mel, kind, path, sent, stored
):
    broken = typed(kind)
    set_path(broken, path, sent)
    # json.dumps escapes a lone surrogate as "\ud83d", as JSON.stringify does.
    response = post_raw(ingest_client, [generation("g0", session="s0"), broken])
    assert response.status_code == 200, response.json()
    expected = stored
    if path == "input":  # a plain string becomes one user message
        path, expected = "input", [{"role": "user", "content": stored}]
    assert stored_text(broken["id"], path) == expected
    assert token_client(mel).get(session_url("s1")).status_code == 200


def test_a_nul_in_a_conversations_history_does_not_fail_its_later_turns(ingest_client):
    history = [
        {"role": "user", "content": "Summarise this PDF:\x00\x00 page 1"},
        {"role": "assistant", "content": "It says..."},
    ]
    first = post_raw(ingest_client, [generation("g1", input=history[:1])])
    later = post_raw(
        ingest_client, [generation("g2", input=[*history, {"role": "user", "content": "More"}])]
    )
    assert first.status_code == later.status_code == 200
    assert Generation.objects.get(external_id="g2").input[0]["content"].count("\ufffd") == 2


ID_FIELDS = ["id", "session_id", "user_id", "generation_id", "replaces", "model"]


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize("bad", ["\x00", "a\ud800", "\udfff", "tab\there", "bell\x07", "c1\x85"])
def test_ids_and_names_with_nul_surrogates_or_controls_are_refused_by_name(
    ingest_client, field, bad
):
    broken = generation("g2")
    broken[field] = bad
    response = post_raw(ingest_client, [generation("g1"), broken])
    errors = rejected_fields(response)
    assert set(errors) == {field}
    assert "control characters" in errors[field]
    assert Event.objects.filter(client_id__startswith="evt-").count() == 1


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        (event("session_outcome", outcome="completed", signal="ok\x00"), "signal"),
        (generation("g2", input=[{"role": "us\ud800er", "content": "x"}]), "input"),
        (generation("g2", input=[{"role": "r" * 65, "content": "x"}]), "input"),
        (generation("g2", model="m" * 201), "model"),  # the column holds 200
    ],
)
def test_other_names_are_refused_by_name(ingest_client, broken, field):
    errors = rejected_fields(post_raw(ingest_client, [generation("g1"), broken]))
    assert set(errors) == {field}


def test_a_model_name_of_200_characters_is_stored(ingest_client):
    assert post_raw(ingest_client, [generation("g1", model="m" * 200)]).status_code == 200
    assert Generation.objects.get().model == "m" * 200


def test_an_echoed_id_with_a_lone_surrogate_does_not_break_the_response(ingest_client):
    broken = generation("g2", id="evt-\ud800", output=None)
    response = post_raw(ingest_client, [generation("g1"), broken])
    errors = response.json()["errors"]
    assert errors[0]["id"] == "evt-\ufffd"
    assert set(errors[0]["errors"]) == {"id", "output"}


@pytest.mark.parametrize("text", ["x" * 25_601 + "\ud800", "\U0001f600" * 6_400 + "\ud800"])
def test_long_text_with_a_lone_surrogate_is_measured_without_error(ingest_client, text):
    response = post_raw(ingest_client, [generation("g1", output=text)])
    assert response.status_code == 200
    assert Generation.objects.get().output.endswith("\ufffd")


def test_text_over_the_limit_with_a_lone_surrogate_is_refused_by_size(ingest_client):
    text = "\U0001f600" * 25_600 + "\ud800"  # 102,400 bytes, plus 3 for U+FFFD
    errors = rejected_fields(
        post_raw(ingest_client, [generation("g1"), generation("g2", output=text)])
    )
    assert "102400 bytes" in errors["output"]


# --- 2. Numbers ----------------------------------------------------------------------------

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400, "-" + "9" * 5000]


@pytest.mark.parametrize("literal", NON_FINITE)
@pytest.mark.parametrize(
    ("broken", "field"),
    [
        (generation("g2", metadata={"score": LITERAL}), "metadata"),
        (generation("g2", metadata={"a": [{"b": LITERAL}]}), "metadata"),
        (event("rating", generation_id="g1", value=LITERAL), "value"),
        (event("view", generation_id="g1", dwell_ms=LITERAL), "dwell_ms"),
        (generation("g2", output=LITERAL), "output"),
    ],
)
def test_non_finite_and_huge_numbers_are_refused_by_name(ingest_client, literal, broken, field):
    response = post_raw(ingest_client, [generation("g1"), broken], literal)
    errors = rejected_fields(response)
    assert set(errors) == {field}
    assert Event.objects.count() == 1


def test_a_non_finite_number_in_a_field_nobody_reads_is_ignored(ingest_client):
    response = post_raw(ingest_client, [generation("g1", extra=LITERAL)], "NaN")
    assert response.status_code == 200
    assert "extra" not in Event.objects.get().payload


@pytest.mark.parametrize(
    ("literal", "ok"),
    [("9223372036854775807", True), ("-9223372036854775808", True), ("9223372036854775808", False)],
)
def test_metadata_integers_hold_64_bits(ingest_client, literal, ok):
    response = post_raw(ingest_client, [generation("g1", metadata={"n": LITERAL})], literal)
    assert (response.status_code == 200) is ok
    if ok:
        assert Generation.objects.get().metadata == {"n": int(literal)}


@pytest.mark.parametrize(
    ("literal", "stored"),
    [("true", 1), ("false", 0), ("4.5", 4.5), ("-1", -1), ("9007199254740992", 2**53)],
)
def test_rating_values_kept_or_normalised(ingest_client, literal, stored):
    response = post_raw(
        ingest_client, [event("rating", generation_id="g1", value=LITERAL)], literal
    )
    assert response.status_code == 200
    value = Event.objects.get().payload["value"]
    assert value == stored and type(value) is type(stored)


@pytest.mark.parametrize("literal", ["1.5e308", "9007199254740993", '"5"', "null", "[1]"])
def test_rating_values_out_of_range_or_not_numbers_are_refused(ingest_client, literal):
    broken = event("rating", generation_id="g1", value=LITERAL)
    errors = rejected_fields(post_raw(ingest_client, [generation("g1"), broken], literal))
    assert set(errors) == {"value"}


@pytest.mark.parametrize(
    ("literal", "stored"),
    [("5400", 5400), ("5400.0", 5400), ("5400.7", 5401), ("0", 0), ("86400000", 86_400_000)],
)
def test_dwell_ms_is_normalised_to_whole_milliseconds(ingest_client, literal, stored):
    response = post_raw(
        ingest_client, [event("view", generation_id="g1", dwell_ms=LITERAL)], literal
    )
    assert response.status_code == 200
    value = Event.objects.get().payload["dwell_ms"]
    assert value == stored and type(value) is int


@pytest.mark.parametrize("literal", ["86400001", "-1", "-0.5", "true", '"5400"', "1e20"])
def test_dwell_ms_out_of_range_is_refused(ingest_client, literal):
    broken = event("view", generation_id="g1", dwell_ms=LITERAL)
    errors = rejected_fields(post_raw(ingest_client, [generation("g1"), broken], literal))
    assert "dwell_ms" in errors and "86400000" in errors["dwell_ms"]


def test_a_day_of_dwell_on_a_regenerated_chain_derives(ingest_client, project):
    from feedback.models import Label

    events = [
        generation("g1", t=0),
        event("regenerate", generation_id="g1", t=1),
        generation("g2", t=2, replaces="g1"),
        event("view", generation_id="g2", t=3, dwell_ms=event_schema.MAX_DWELL_MS),
        event("copy", generation_id="g2", t=4),
    ]
    assert post_raw(ingest_client, events).status_code == 200
    labelling.sessions_derive_pending(project=project)
    assert Label.objects.filter(source="regenerate").exists()


# --- 3. Nesting and size -----------------------------------------------------------------


def test_a_body_nested_100000_deep_is_400_naming_the_body(ingest_client):
    body = "[" * 100_000 + "]" * 100_000
    response = ingest_client.post(URL, data=body, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["errors"]["body"]


def test_an_event_nested_100000_deep_is_refused_alone(ingest_client):
    response = post_raw(ingest_client, [generation("g1"), LITERAL], "[" * 100_000 + "]" * 100_000)
    assert rejected_fields(response) == {"event": "Must be a JSON object."}
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        (generation("g2", metadata=LITERAL), "metadata"),
        (generation("g2", metadata={"a": LITERAL}), "metadata"),
        (generation("g2", output=LITERAL), "output"),
        (generation("g2", input=LITERAL), "input"),
        (event("rating", generation_id="g1", value=LITERAL), "value"),
    ],
)
def test_a_field_nested_10000_deep_is_refused_by_name_and_the_rest_stored(
    ingest_client, broken, field
):
    deep = '{"x": ' * 10_000 + '"bottom"' + "}" * 10_000
    response = post_raw(ingest_client, [generation("g1"), broken, generation("g3")], deep)
    errors = rejected_fields(response)
    assert set(errors) == {field}
    assert "deep" in errors[field]
    assert set(Generation.objects.values_list("external_id", flat=True)) == {"g1", "g3"}


def test_deep_nesting_outside_the_events_is_ignored(ingest_client):
    deep = "[" * 10_000 + "]" * 10_000
    body = '{"client": ' + deep + ', "events": ' + json.dumps([generation("g1")]) + "}"
    response = ingest_client.post(URL, data=body, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["accepted"] == 1


@pytest.mark.parametrize(
    "body",
    ['{"events": [' + "[" * 5000, '{"events": [' + "[" * 5000 + "]" * 4000 + "]}", '{"events"'],
)
def test_a_truncated_deep_body_is_400(ingest_client, body):
    response = ingest_client.post(URL, data=body, content_type="application/json")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def test_metadata_may_nest_20_levels_and_no_more(ingest_client):
    ok = post_raw(ingest_client, [generation("g1", metadata=nested(20))])
    assert ok.status_code == 200
    errors = rejected_fields(post_raw(ingest_client, [generation("g2", metadata=nested(21))]))
    assert "more than 20 levels" in errors["metadata"]
    assert 'metadata["x"]' in errors["metadata"]


@pytest.mark.parametrize(
    "metadata",
    [
        {"blob": "x" * (4 * 1024 * 1024)},  # a 4 MB value was accepted before
        {"blob": "x" * 16_400},
        {"many": list(range(4_000))},  # small in the walk's count, large as JSON
        {"escaped": "\x01" * 3_000},  # 18 kB once escaped as \u0001
    ],
)
def test_metadata_over_16_kb_is_refused_by_name(ingest_client, metadata):
    errors = rejected_fields(
        post_raw(ingest_client, [generation("g1"), generation("g2", metadata=metadata)])
    )
    assert set(errors) == {"metadata"}
    assert "16384 bytes" in errors["metadata"]


def test_metadata_just_under_16_kb_is_stored(ingest_client):
    metadata = {"blob": "x" * (16 * 1024 - 20)}
    assert post_raw(ingest_client, [generation("g1", metadata=metadata)]).status_code == 200
    assert Generation.objects.get().metadata == metadata


# --- 4. Timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+05:00",  # a BC date in PostgreSQL
        "0001-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",  # a client clock that was never set
        "1999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59-14:00",  # past datetime.max in UTC
        "9999-12-31T23:59:59+14:00",
        "2026-11-20T10:00:00\x00Z",
        "2026-11-20T10:00:00\ud800Z",
        "２０２６-11-20T10:00:00Z",
        "2026-11-20T10:00:00+24:00",
        "2026-11-20",
    ],
)
def test_timestamps_outside_the_accepted_range_or_form_are_refused_by_name(
    ingest_client, timestamp
):
    broken = generation("g2", timestamp=timestamp)
    errors = rejected_fields(post_raw(ingest_client, [generation("g1"), broken]))
    assert set(errors) == {"timestamp"}


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-11-20T10:00:00z", "2026-11-20T10:00:00+00:00"),
        ("2026-11-20t10:00:00.5+05:30", "2026-11-20T04:30:00.500000+00:00"),
        ("2026-11-20 10:00:00-02:00", "2026-11-20T12:00:00+00:00"),
        ("2026-11-20T10:00:00.123456789Z", "2026-11-20T10:00:00.123456+00:00"),
        ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00+00:00"),
        ("2026-11-20T10:00:00+05:30:15", "2026-11-20T04:29:45+00:00"),
    ],
)
def test_unambiguous_iso_timestamps_are_stored_in_utc(ingest_client, sent, stored):
    response = post_raw(ingest_client, [generation("g1", timestamp=sent)])
    assert response.status_code == 200, response.json()
    assert Event.objects.get().timestamp.isoformat() == stored
    assert Generation.objects.get().created_at.isoformat() == stored


# --- 5. Content parts ------------------------------------------------------------------------


def test_openai_style_content_parts_are_joined_into_text(ingest_client):
    parts = [{"type": "text", "text": "Summarise:"}, {"type": "text", "text": "the report"}]
    messages = [{"role": "user", "content": parts}]
    assert post_raw(ingest_client, [generation("g1", input=messages)]).status_code == 200
    assert Generation.objects.get().input == [{"role": "user", "content": "Summarise:\nthe report"}]


@pytest.mark.parametrize(
    ("parts", "fragment"),
    [
        ([{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {}}], "image_url"),
        ([], "at least one text part"),
        (["plain"], "not an object"),
        ([{"type": "text"}], "'text'"),
        ([{"type": "text", "text": 5}], "'text'"),
    ],
)
def test_content_parts_other_than_text_are_refused_naming_input(ingest_client, parts, fragment):
    broken = generation("g2", input=[{"role": "user", "content": parts}])
    errors = rejected_fields(post_raw(ingest_client, [generation("g1"), broken]))
    assert "Message 0 content" in errors["input"] and fragment in errors["input"]


# --- 6. Session ids (reading back: tests/feedback/test_session_api.py) -------------------


@pytest.mark.parametrize("session_id", [".", "..", "a/../b", "a/./b", "../x"])
def test_session_ids_clients_would_rewrite_in_a_url_are_refused(ingest_client, session_id):
    broken = generation("g2", session=session_id)
    errors = rejected_fields(post_raw(ingest_client, [generation("g1"), broken]))
    assert set(errors) == {"session_id"}


# --- Body and headers ------------------------------------------------------------------------


@pytest.mark.parametrize("length", ["²", "-1", "1e3", "0x10"])
def test_a_content_length_that_is_not_a_number_is_400(ingest_client, length):
    body = json.dumps({"events": [generation("g1")]})
    response = ingest_client.post(
        URL, data=body, content_type="application/json", CONTENT_LENGTH=length
    )
    assert response.status_code == 400
    assert "body" in response.json()["errors"]


@pytest.mark.parametrize("body", [b'{"events": ["\xff"]}', b"{}garbage", b'{"events": [1,]}'])
def test_a_body_that_is_not_utf8_json_is_400(ingest_client, body):
    response = ingest_client.post(URL, data=body, content_type="application/json")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]


def test_raw_surrogate_bytes_are_read_like_their_json_escape(ingest_client):
    """CESU-8 / WTF-8 bytes of a lone surrogate: json.loads reads them as the character."""
    body = json.dumps({"events": [generation("g1", output="cut @@")]}).encode()
    body = body.replace(b"@@", b"\xed\xa0\xbd")
    assert ingest_client.post(URL, data=body, content_type="application/json").status_code == 200
    assert Generation.objects.get().output == "cut \ufffd"


# --- 7. Property: no input costs a 500 or the rest of the batch -------------------------------

KNOWN_FIELDS = {
    "event", "id", "type", "timestamp", "session_id", "user_id", "generation_id", "input",
    "output", "model", "replaces", "metadata", "text", "dwell_ms", "value", "comment",
    "outcome", "signal",
}  # fmt: skip
FIELDS_BY_TYPE = {
    "generation": [
        "input", "input.0.role", "input.0.content", "output", "model", "replaces", "metadata",
        "metadata.feature", "metadata.nested",
    ],
    "edit": ["text"],
    "regenerate": [],
    "copy": ["text"],
    "share": [],
    "view": ["dwell_ms"],
    "rating": ["value", "comment"],
    "session_outcome": ["outcome", "signal"],
}  # fmt: skip
COMMON_FIELDS = ["id", "type", "timestamp", "session_id", "user_id", "generation_id"]
RAW_LITERALS = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400, "9223372036854775808",
    "1.5e308", "-0", "5400.0", "5400.5", "1e-400", '"\\ud800"', '"\\udfff"', '"a\\u0000b"',
    '"\\ud83d"', '"\\u0000"', "[" * 3000 + "]" * 3000, '{"a":' * 25 + "1" + "}" * 25,
    '[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]',
    '[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]',
    '[{"role": "\\u0000", "content": "x"}]', '[{"role": "user", "content": "\\ud800"}]',
]  # fmt: skip
NASTY_STRINGS = [
    "", " ", "/", ".", "..", "a/../b", "?", "#", "%", "%00", "日本", "\x00", "\ud800", "\x7f",
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-14:00", "2026-11-20T10:00:00z",
    "1999-12-31T23:59:59Z", "2026-11-20t10:00:00+05:30", "x" * 256, "m" * 201, "generation",
    "completed", "abandoned", "text", "image_url", "user",
]  # fmt: skip


class Raw:
    def __init__(self, text: str) -> None:
        self.text = text


MISSING = object()
strings = st.sampled_from(NASTY_STRINGS) | st.text(
    st.characters(codec=None, exclude_categories=()), max_size=20
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | strings,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(strings, children, max_size=3)
    ),
    max_leaves=10,
)
values = json_values | st.sampled_from(RAW_LITERALS).map(Raw) | st.just(MISSING)


@st.composite
def mutated_events(draw) -> tuple[dict[str, Any], list[str]]:
    kind = draw(st.sampled_from(list(FIELDS_BY_TYPE)))
    fields = COMMON_FIELDS + FIELDS_BY_TYPE[kind]
    base = typed(kind) if kind in ("generation", "edit", "copy", "rating") else event(kind)
    if kind == "view":
        base["dwell_ms"] = 1200
    if kind == "session_outcome":
        base.update(outcome="completed", signal="tests_passed")
    if kind not in ("session_outcome",):
        base.setdefault("generation_id", "g1")
    base["session_id"] = "s-fuzz"
    literals = []
    for path in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True)):
        value = draw(values)
        if isinstance(value, Raw):
            literals.append(value.text)
            value = f"@@raw{len(literals) - 1}@@"
        try:
            if value is MISSING:
                *parents, last = path.split(".")
                set_path(base, path, None)
                if not parents:
                    del base[last]
            else:
                set_path(base, path, value)
        except (KeyError, IndexError, TypeError, ValueError):
            pass  # an earlier mutation replaced the parent; the event is odd enough
    return base, literals


_batch = itertools.count()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutated=mutated_events())
def test_any_event_gets_200_or_a_per_event_error_naming_a_field(
    ingest_client, mel, project, mutated
):
    """And whatever is accepted is stored, derives, and reads back."""
    broken, literals = mutated
    n = next(_batch)
    before = generation(f"g-before-{n}", session=f"s-good-{n}")
    after = event("rating", generation_id=f"g-before-{n}", session=f"s-good-{n}", value=1)
    body = json.dumps({"events": [before, broken, after]})
    for index, literal in enumerate(literals):
        body = body.replace(json.dumps(f"@@raw{index}@@"), literal)
    response = ingest_client.post(URL, data=body, content_type="application/json")

    assert response.status_code in (200, 207), response.content[:500]
    result = response.json()
    assert Event.objects.filter(client_id__in=[before["id"], after["id"]]).count() == 2
    for error in result["errors"]:
        assert error["index"] == 1
        assert error["errors"] and set(error["errors"]) <= KNOWN_FIELDS, error
        assert all(isinstance(m, str) and m for m in error["errors"].values())
    session_id = broken.get("session_id")
    if response.status_code == 200 and isinstance(session_id, str):
        # Whatever was accepted can be read back.
        read = token_client(mel).get(session_url(session_id))
        assert read.status_code == 200, read.content[:300]
        assert Session.objects.filter(external_id=session_id).exists()
    labelling.sessions_derive_pending(project=project)
    failed = Session.objects.filter(derive_failures__gt=0)
    assert not failed.exists(), list(failed.values_list("external_id", "derive_error"))
