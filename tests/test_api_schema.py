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
from io import StringIO

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.db import connection, transaction
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from exports import services as export_services
from exports.models import ExportJob
from exports.selectors import parse_filters
from feedback import labelling
from feedback import services as feedback_services
from feedback.models import Membership
from review import claims
from review import services as review_services
from review.models import Item, Queue
from tests.factories import one_of_each

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
                body = answer.get("content", {}).get("application/json", {}).get("schema")
                if code.startswith("2") and body is not None:
                    assert body != {"type": "object", "additionalProperties": {}}, where


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
    feedback_services.membership_set(project=project, user=user, role=role)
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
