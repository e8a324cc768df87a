"""The OpenAPI schema is valid and complete, and every operation keeps to it under fuzzing.

Schemathesis generates requests for every operation of the schema (valid and invalid ones)
and sends them in-process to the Django app, on PostgreSQL, with real credentials and a
seeded project (a derived session, a queue with a claimed item, a finished export), so the
requests reach the real code paths. No answer may be a 5xx, and every answer must be
documented: its status code, content type and body shape.

Each example runs inside a savepoint that is rolled back afterwards, so every example sees
the same seeded data (and a database error in one cannot poison the next).

Set GLEANER_FUZZ_SURVEY=<file> to survey instead of test: every failing example is appended
to that file (operation, failure, request as curl, traceback of a 5xx) and the run goes on.
"""

from __future__ import annotations

import itertools
import json
import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from io import StringIO
from unittest.mock import ANY

import jsonschema
import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.db import connection, transaction
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from exports import services as export_services
from exports.filters import parse_filters
from exports.models import ExportJob
from feedback import labelling
from feedback import services as feedback_services
from feedback.models import Label
from feedback.quality import calibration_forget
from review import claims, gate
from review import services as review_services
from review.models import Item, Queue
from tenancy.keys import api_key_create
from tenancy.models import Membership
from tenancy.services import membership_set
from tests.conftest import token_client
from tests.factories import edit, generation, one_of_each

SURVEY = os.environ.get("GLEANER_FUZZ_SURVEY")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _schema_dict() -> dict:
    """The schema exactly as /api/schema/ serves it (drf-spectacular, no request needed)."""
    raw = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(raw))


schema = schemathesis.openapi.from_dict(_schema_dict())


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    stderr = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stderr=stderr)
    assert out.stat().st_size > 0
    assert "warning" not in stderr.getvalue().lower(), stderr.getvalue()


def test_every_operation_documents_its_answers():
    """Request bodies where the view reads one, a typed 2xx body and the error answers."""
    spec = _schema_dict()
    events = spec["paths"]["/api/v1/events"]["post"]
    assert events["requestBody"]["content"]["application/json"]["schema"]
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            codes = set(operation["responses"])
            where = f"{method.upper()} {path}"
            assert {"401", "503"} <= codes, where
            if "{" in path:
                assert "404" in codes, where
            for code, answer in operation["responses"].items():
                if code.startswith("2"):
                    _assert_typed_answer(spec, where, code, answer)
                else:
                    body = answer["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/Error"}, f"{where} {code}"


def _assert_typed_answer(spec: dict, where: str, code: str, answer: dict) -> None:
    """A 2xx answer has a body with its properties named (204 has none; a file is a string)."""
    content = answer.get("content")
    if code == "204":
        assert content is None, where
        return
    assert content, f"{where} {code}: no body documented"
    for content_type, media in content.items():
        schema = media.get("schema", {})
        if content_type != "application/json":
            assert schema.get("type") == "string", f"{where} {code} {content_type}"
            continue
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        assert schema.get("properties"), f"{where} {code}: a free-form object"


# Objects of 2xx answers that hold what a client or a rule put there, by design. Any other
# object without named properties (or a field of no type) fails the test below.
FREE_FORM = {
    "SessionGeneration.metadata{}",  # the client's own generation metadata
    "SessionEvent.metadata{}",
    "SessionLabel.evidence{}",  # what each derivation rule read: its own names
    "ItemForReview.prompt[]{}",  # a free-content item's messages keep their own keys
    "ItemForReview.prompt[].content",
}


def _free_form_fields(spec: dict) -> set[str]:
    """Every place in a 2xx JSON body where the schema leaves the shape open."""
    components = spec["components"]["schemas"]
    found: set[str] = set()
    seen: set[str] = set()

    def walk(node: object, where: str) -> None:
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                walk(components[name], name)
            return
        for key in ("oneOf", "anyOf", "allOf"):
            for option in node.get(key, []):
                walk(option, where)
        composed = any(key in node for key in ("oneOf", "anyOf", "allOf", "enum"))
        if "type" not in node and not composed:
            found.add(where)
        for name, field in node.get("properties", {}).items():
            walk(field, f"{where}.{name}")
        if "items" in node:
            walk(node["items"], f"{where}[]")
        extra = node.get("additionalProperties")
        if node.get("type") == "object" and not node.get("properties") and extra in (None, True):
            found.add(f"{where}{{}}")
        if isinstance(extra, dict):
            walk(extra, f"{where}{{}}")

    for methods in spec["paths"].values():
        for operation in methods.values():
            for code, answer in operation["responses"].items():
                media = answer.get("content", {}).get("application/json")
                if code.startswith("2") and media:
                    walk(media["schema"], f"{operation['operationId']} {code}")
    return found


def test_answers_are_typed_all_the_way_down():
    assert _free_form_fields(_schema_dict()) == FREE_FORM


@dataclass
class World:
    project_slug: str
    session_id: str
    queue_id: int
    item_id: int
    export_id: int
    headers: dict[str, dict[str, str]]  # role -> Authorization header


def _token(django_user_model, username: str, project, role: str) -> dict[str, str]:
    user = django_user_model.objects.create_user(username=username, password="pw")
    membership_set(project=project, user=user, role=role)
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


@pytest.fixture
def world(project, api_key, django_user_model, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path
    headers = {
        "key": {"Authorization": f"Bearer {api_key}"},
        "annotator": _token(django_user_model, "alice", project, Membership.Role.ANNOTATOR),
        "lead": _token(django_user_model, "carol", project, Membership.Role.LEAD),
        "ml": _token(django_user_model, "mel", project, Membership.Role.ML),
    }
    assert feedback_services.events_ingest(project=project, events=one_of_each("s1")).accepted
    for _ in range(10):
        if not labelling.sessions_derive_pending():
            break
    alice = django_user_model.objects.get(username="alice")
    queue = review_services.queue_create(
        project=project,
        name="Fuzzed",
        members=[alice],
        annotations_per_item=2,
        questions=[
            {
                "key": "better",
                "type": "choice",
                "prompt": "Which is better?",
                "choices": ["left", "right", "tie"],
            },
            {"key": "quality", "type": "rating", "prompt": "Quality", "min": 1, "max": 5},
            {"key": "note", "type": "text", "prompt": "Why?", "required": False},
        ],
    )
    review_services.items_add(
        queue=queue,
        items=[
            {"content": {"prompt": f"Question {n}?", "responses": [f"A{n}", f"B{n}"]}}
            for n in range(3)
        ],
    )
    assignment = claims.item_claim_next(queue=Queue.objects.get(pk=queue.pk), user=alice)
    job = export_services.export_job_create(
        project=project,
        created_by=None,
        fmt=ExportJob.Format.DPO,
        file_format=ExportJob.FileFormat.JSONL,
        filters=parse_filters({}, project=project),
    )
    export_services.export_build(job=export_services.export_claim(job_id=job.pk))
    assert ExportJob.objects.get(pk=job.pk).status == ExportJob.Status.DONE
    assert Item.objects.filter(queue=queue).count() == 3
    return World(
        project_slug=project.slug,
        session_id="s1",
        queue_id=queue.pk,
        item_id=assignment.item_id,
        export_id=job.pk,
        headers=headers,
    )


def _role(method: str, path: str) -> str:
    """Who may call the operation: the key ingests, ML reads sessions and exports, the lead
    manages queues, the annotator works in them."""
    if path == "/api/v1/events":
        return "key"
    if path.startswith(("/api/v1/sessions", "/api/v1/exports")):
        return "ml"
    if path.endswith(("/next", "/annotations", "/skip")) or (path, method) == (
        "/api/v1/queues",
        "GET",
    ):
        return "annotator"
    return "lead"


def _steer(case, world: World, *, real: bool) -> None:  # noqa: ANN001
    """Point the case at the seeded rows: ids always (a random id is only ever a 404), the
    project slug and session id on every other example (the rest keep fuzzed values)."""
    path = case.path_parameters or {}
    ids = {"queue_id": world.queue_id, "item_id": world.item_id, "export_id": world.export_id}
    for name in path.keys() & ids.keys():
        path[name] = ids[name]
    if real and "session_id" in path:
        path["session_id"] = world.session_id
    if real and "slug" in path:
        path["slug"] = world.project_slug
    if real and case.query and "project" in case.query:
        case.query["project"] = world.project_slug
    if real and isinstance(case.body, dict) and "project" in case.body:
        case.body["project"] = world.project_slug


@pytest.fixture
def server_errors() -> Iterator[list[str]]:
    """Tracebacks of the exceptions the app turned into 500s, in order."""
    seen: list[str] = []

    def record(sender, request, **kwargs) -> None:  # noqa: ANN001
        seen.append(traceback.format_exc())

    signals.got_request_exception.connect(record)
    yield seen
    signals.got_request_exception.disconnect(record)


_examples = itertools.count()


def _survey(case, response, tracebacks: list[str], failure: str) -> None:  # noqa: ANN001
    tail = "\n".join(tracebacks[-1].strip().splitlines()[-6:]) if tracebacks else ""
    with open(SURVEY, "a") as out:
        record = {
            "operation": f"{case.method} {case.path}",
            "status": response.status_code,
            "failure": failure[:1500],
            "curl": case.as_curl_command()[:3000],
            "traceback": tail,
        }
        out.write(json.dumps(record) + "\n")


@pytest.mark.postgres
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_keeps_to_its_schema(case, world, wsgi_app, server_errors):  # noqa: ANN001
    _steer(case, world, real=next(_examples) % 2 == 0)
    headers = world.headers[_role(case.method, case.path)]
    savepoint = transaction.savepoint_create()
    try:
        if not SURVEY:
            case.call_and_validate(headers=headers, checks=CHECKS, app=wsgi_app)
            return
        del server_errors[:]
        response = case.call(headers=headers, app=wsgi_app)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as failures:
            _survey(case, response, server_errors, str(failures))
    finally:
        transaction.savepoint_rollback(savepoint)
        connection.needs_rollback = False


# --- Real answers against the schema (SQLite and PostgreSQL) --------------------------------
#
# The fuzz test above needs PostgreSQL; these call the main endpoints once each with real
# data and check every body against the schema, strictly: an object may hold only the
# properties it documents, so a key added to a view but not to its serializer fails here,
# as does a documented required key that the view stopped sending.

SPEC = _schema_dict()


def _strict(node: object) -> object:
    """OpenAPI 3.0 schema -> JSON Schema 2020-12: `nullable` becomes a null alternative, and
    an object that lists its properties admits no others."""
    if isinstance(node, list):
        return [_strict(value) for value in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items() if key != "nullable"}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


COMPONENTS = _strict(SPEC["components"])

# Dates as the API writes them (ISO 8601; a date-time with its offset): jsonschema checks
# these formats only with optional packages, which are not installed.
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(date.fromisoformat(value))


def _body_schema(method: str, path: str, code: int, content_type: str) -> dict | None:
    """The documented body of one answer (None for an answer without a body); fails the
    test if the status code or content type is not documented for the operation."""
    operation = SPEC["paths"][path][method]
    answers = operation["responses"]
    assert str(code) in answers, f"{method.upper()} {path} answered {code}, not in {set(answers)}"
    content = answers[str(code)].get("content")
    if content is None:
        return None
    assert content_type in content, f"{method.upper()} {path} {code} answered {content_type}"
    return content[content_type]["schema"]


def assert_documented(response, method: str, path: str) -> None:  # noqa: ANN001
    """`response` (to `method` on the templated `path`) is an answer the schema documents."""
    content_type = response.get("Content-Type", "").split(";")[0]
    schema = _body_schema(method, path, response.status_code, content_type)
    if schema is None:
        assert not response.content, f"{method.upper()} {path}: undocumented body"
        return
    if content_type != "application/json":
        assert schema["type"] == "string", f"{method.upper()} {path}: {content_type} as {schema}"
        return
    if response.streaming:  # a file: read it, and leave it readable for the test
        data = b"".join(response.streaming_content)
        response.streaming_content = [data]
    else:
        data = response.content
    jsonschema.validate(
        json.loads(data),
        {**_strict(schema), "components": COMPONENTS},
        cls=jsonschema.Draft202012Validator,
        format_checker=FORMATS,
    )


def call(client, method: str, path: str, data: object = None, **params: object):  # noqa: ANN001
    """Call the templated `path` with `params` filled in (the rest as the query string) and
    check the answer against the schema."""
    names = {name for name in params if "{" + name + "}" in path}
    url = path.format(**{name: params[name] for name in names})
    query = {name: value for name, value in params.items() if name not in names}
    if method == "get":
        response = client.get(url, query)
    else:
        suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
        response = getattr(client, method)(url + suffix, data, format="json")
    assert_documented(response, method, path)
    return response


def test_the_check_fails_on_a_body_that_drifted_from_its_serializer():
    body = {"accepted": 1, "duplicates": 0, "rejected": 0, "errors": []}
    schema = {"$ref": "#/components/schemas/IngestResult", "components": COMPONENTS}
    jsonschema.validate(body, schema)
    with pytest.raises(jsonschema.ValidationError, match="extra"):
        jsonschema.validate({**body, "extra": 1}, schema)
    with pytest.raises(jsonschema.ValidationError, match="'errors' is a required property"):
        jsonschema.validate({k: v for k, v in body.items() if k != "errors"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**body, "accepted": "1"}, schema)
    moment = {"type": "string", "format": "date-time"}
    jsonschema.validate("2026-12-02T12:00:00Z", moment, format_checker=FORMATS)
    for wrong in ("2026-12-02T12:00:00", "yesterday"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, moment, format_checker=FORMATS)


@pytest.mark.django_db
def test_ingest_answers_match_the_schema(ingest_client, project, settings):
    events = one_of_each("s1")
    stored = call(ingest_client, "post", "/api/v1/events", {"events": events})
    assert stored.status_code == 200
    bad = {**events[0], "id": "g9", "timestamp": "yesterday"}
    partly = call(ingest_client, "post", "/api/v1/events", {"events": [*events, bad]})
    assert partly.status_code == 207
    assert partly.json()["errors"][0]["errors"] == {"timestamp": ANY}
    assert call(ingest_client, "post", "/api/v1/events", {"nope": []}).status_code == 400
    assert call(APIClient(), "post", "/api/v1/events", {"events": []}).status_code == 401
    settings.GLEANER_MAX_EVENTS_PER_REQUEST = 2
    assert call(ingest_client, "post", "/api/v1/events", {"events": events}).status_code == 413
    _, publishable = api_key_create(
        project=project, publishable=True, origins=["https://app.example"]
    )
    browser = APIClient()
    browser.credentials(HTTP_AUTHORIZATION=f"Bearer {publishable}")
    assert call(browser, "post", "/api/v1/events", {"events": events[1:2]}).status_code == 403


@pytest.mark.django_db
def test_session_answers_match_the_schema(project, mel):
    assert feedback_services.events_ingest(project=project, events=one_of_each("s1")).accepted
    labelling.sessions_derive_pending()
    client = token_client(mel)
    session = call(client, "get", "/api/v1/sessions/{session_id}", session_id="s1", project="acme")
    assert session.status_code == 200
    body = session.json()
    assert [label for g in body["generations"] for label in g["labels"]]  # labels checked too
    assert {e["type"] for e in body["events"]} == {e["type"] for e in one_of_each("s1")}
    assert call(client, "get", "/api/v1/sessions/{session_id}", session_id="s1").status_code == 400
    missing = call(client, "get", "/api/v1/sessions/{session_id}", session_id="s9", project="acme")
    assert missing.status_code == 404


QUEUES = "/api/v1/queues"
QUEUE = "/api/v1/queues/{queue_id}"
ITEM = "/api/v1/queues/{queue_id}/items/{item_id}"


@pytest.mark.django_db
def test_review_answers_match_the_schema(project, alice, bob, carol):
    lead, first, second = token_client(carol), token_client(alice), token_client(bob)
    assert feedback_services.events_ingest(
        project=project,
        events=[
            generation("e1", output="Revenue grew 4% in the quarter, said the report."),
            edit("e1", "Revenue grew 5% in Q3, said the report.", t=10),
        ],
    ).accepted
    labelling.sessions_derive_pending()
    label = Label.objects.get(source="edit")

    created = call(
        lead,
        "post",
        QUEUES,
        {
            "project": "acme",
            "name": "Checked",
            "annotations_per_item": 2,
            "members": ["alice", "bob"],
            "questions": [
                {
                    "key": "better",
                    "type": "choice",
                    "prompt": "Which?",
                    "choices": ["left", "right"],
                },
                {"key": "quality", "type": "rating", "prompt": "Quality", "min": 1, "max": 5},
                {"key": "note", "type": "text", "prompt": "Why?", "required": False},
            ],
        },
    )
    assert created.status_code == 201
    queue_id = created.json()["id"]
    assert call(lead, "post", QUEUES, {"project": "acme"}).status_code == 400
    assert call(first, "post", QUEUES, {**created.json(), "project": "acme"}).status_code == 404
    assert call(first, "get", QUEUES).json()["queues"][0]["id"] == queue_id

    items = [
        {"label_id": label.pk, "priority": 9},
        {"generation_id": "e1", "priority": 5},
        *({"content": {"prompt": f"Q{n}?", "responses": [f"A{n}", f"B{n}"]}} for n in range(3)),
    ]
    added = call(lead, "post", QUEUE + "/items", {"items": items}, queue_id=queue_id)
    assert added.status_code == 201
    label_item, gen_item, *free = added.json()["ids"]
    bad = call(lead, "post", QUEUE + "/items", {"items": [{"priority": 1}]}, queue_id=queue_id)
    assert bad.status_code == 400
    refused = call(first, "post", QUEUE + "/items", {"items": items}, queue_id=queue_id)
    assert refused.status_code == 404  # a queue the caller does not lead

    answers = {"better": "left", "quality": 4, "note": "fine"}
    for client in (first, second):
        claimed = call(client, "post", QUEUE + "/next", queue_id=queue_id)
        assert claimed.json()["item"]["id"] == label_item
        assert claimed.json()["item"]["diff"]  # an edit pair: the word diff is checked too
        wrong = call(
            client,
            "post",
            ITEM + "/annotations",
            {"answers": {"better": "up"}},
            queue_id=queue_id,
            item_id=label_item,
        )
        assert wrong.status_code == 400
        answered = call(
            client,
            "post",
            ITEM + "/annotations",
            {"answers": answers},
            queue_id=queue_id,
            item_id=label_item,
        )
        assert answered.status_code == 201
    again = call(
        first,
        "post",
        ITEM + "/annotations",
        {"answers": answers},
        queue_id=queue_id,
        item_id=label_item,
    )
    assert again.status_code == 409

    claimed = call(first, "post", QUEUE + "/next", queue_id=queue_id)
    assert claimed.json()["item"]["id"] == gen_item
    skipped = call(first, "post", ITEM + "/skip", queue_id=queue_id, item_id=gen_item)
    assert skipped.json() == {"skipped": gen_item}
    for item_id in free:
        assert (
            call(first, "post", QUEUE + "/next", queue_id=queue_id).json()["item"]["id"] == item_id
        )
        call(first, "post", ITEM + "/skip", queue_id=queue_id, item_id=item_id)
    assert call(first, "post", QUEUE + "/next", queue_id=queue_id).status_code == 204

    gold = call(
        lead,
        "post",
        ITEM + "/gold",
        {"answers": {"better": "left", "quality": 4}},
        queue_id=queue_id,
        item_id=free[0],
    )
    assert gold.status_code == 200
    decided = call(
        lead,
        "post",
        ITEM + "/adjudication",
        {"decision": "accepted"},
        queue_id=queue_id,
        item_id=gen_item,
    )
    assert decided.status_code == 201
    held = call(lead, "post", QUEUE + "/held-out", {"item_ids": [free[1]]}, queue_id=queue_id)
    assert held.json() == {"held_out": 1}
    assert call(lead, "post", QUEUE + "/held-out", {}, queue_id=queue_id).status_code == 400

    before = call(lead, "get", QUEUE, queue_id=queue_id)
    assert before.json()["agreement"] == {}
    gate.queue_agreement_recompute(queue=Queue.objects.get(pk=queue_id))
    detail = call(lead, "get", QUEUE, queue_id=queue_id)
    assert set(detail.json()["annotators"]) == {"alice", "bob"}  # a lead's view, checked too
    assert detail.json()["agreement"]["better"]["items"] == 1
    assert "annotators" not in call(first, "get", QUEUE, queue_id=queue_id).json()
    assert call(lead, "get", QUEUE, queue_id=queue_id + 100).status_code == 404


@pytest.mark.django_db
def test_quality_answers_match_the_schema(project, mel, alice):
    assert feedback_services.events_ingest(project=project, events=one_of_each("s1")).accepted
    labelling.sessions_derive_pending()
    # People's verdicts as the gate writes them, so that the report has cells and weeks.
    Label.objects.filter(project=project).update(
        review_outcome="accepted", review_reason="qa_sample"
    )
    calibration_forget()
    path = "/api/v1/projects/{slug}/quality"
    report = call(token_client(mel), "get", path, slug="acme")
    assert report.status_code == 200
    assert report.json()["cells"] and report.json()["weekly"]  # both checked too
    assert call(token_client(alice), "get", path, slug="acme").status_code == 404


@pytest.mark.django_db
def test_export_answers_match_the_schema(project, mel, alice, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    assert feedback_services.events_ingest(project=project, events=one_of_each("s1")).accepted
    labelling.sessions_derive_pending()
    client = token_client(mel)
    body = {
        "project": "acme",
        "format": "dpo",
        "filters": {"since": "2020-01-01", "sources": ["edit"]},
        "allow_below_policy": True,
    }
    queued = call(client, "post", "/api/v1/exports", body)
    assert queued.status_code == 202
    export_id = queued.json()["id"]
    assert call(token_client(alice), "post", "/api/v1/exports", body).status_code == 403
    assert call(client, "post", "/api/v1/exports", {**body, "format": "?"}).status_code == 400
    detail = "/api/v1/exports/{export_id}"
    assert call(client, "get", detail, export_id=export_id).json()["status"] == "queued"

    export_services.export_build(job=export_services.export_claim(job_id=export_id))
    done = call(client, "get", detail, export_id=export_id).json()
    assert done["status"] == "done"
    assert done["manifest"]["files"]  # the manifest is checked too
    listed = call(client, "get", "/api/v1/exports", project="acme").json()["exports"]
    assert [job["id"] for job in listed] == [export_id]
    download = detail + "/download"
    file = call(client, "get", download, export_id=export_id, file="manifest")
    assert json.loads(b"".join(file.streaming_content))["export_id"] == export_id
    assert call(client, "get", download, export_id=export_id, file="nope").status_code == 400
    assert call(client, "get", detail, export_id=export_id + 1).status_code == 404
