"""The review API (DESIGN.md, "Read API, review API"): same rules as the pages."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import Field, Model
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.parsers import DepthSafeJSONParser
from config.schema import RETRY_AFTER, error_responses
from core.rows import instance_from_row, sql_columns
from core.statements import statement_cursor
from core.storable import ID_MAX, INT_MAX, INT_MIN, json_problem, text_problem
from core.typing import AuthedApiRequest
from feedback.models import Generation, Label
from review import claims, history, selectors, services
from review.answers import MAX_SECONDS_SPENT, AnswersInvalid
from review.models import (
    MAX_CLAIM_TIMEOUT_MINUTES,
    MAX_GUIDELINES,
    MAX_RATING_POINTS,
    Adjudication,
    Annotation,
    Assignment,
    Item,
    Question,
    Queue,
)
from review.serializers import (
    AdjudicationResultSerializer,
    AnnotationSerializer,
    ClaimSerializer,
    GoldResultSerializer,
    HeldOutResultSerializer,
    ItemsAddedSerializer,
    QuestionSerializer,
    QueueDetailSerializer,
    QueueListSerializer,
    QueueOutputSerializer,
    SkippedSerializer,
    choice_field,
)
from tenancy.access import access_project
from tenancy.models import Membership, Project

MAX_MESSAGES = 500
MAX_MESSAGE_DEPTH = 6  # a message, its content parts, and a little inside each


class ReviewApiView(APIView):
    # JSON only, as documented: a form body is a 415 in JSON, never Django's HTML 400 for
    # more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields.
    parser_classes = [DepthSafeJSONParser]


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)  # noqa: S101 - a concrete field
    return str(field.column)


# The queue of an annotator's request, with its project and its questions, in one statement
# (PostgreSQL): the same test as `selectors.access_queue` (a member of the queue who is also
# a member of its project, or a lead or admin of the project, or a superuser), and the
# questions as `selectors.access_work_queue` reads them (`queue_questions` then needs no
# query). Written out: compiling the equivalent querysets cost more CPU than the claim.
def _access_sql() -> str:
    queue_table, project_table = Queue._meta.db_table, Project._meta.db_table
    question_fields = ", ".join(
        f"'{name}', x.\"{_column(Question, name)}\""
        for name in selectors._QUESTION_FIELDS  # noqa: SLF001 - the same shape as the work page
    )
    return f"""
    SELECT {sql_columns(Queue, "q")}, {sql_columns(Project, "p")},
        (SELECT jsonb_agg(jsonb_build_object({question_fields}) ORDER BY x.position, x.id)
         FROM {Question._meta.db_table} x WHERE x.queue_id = q.id)
    FROM {queue_table} q JOIN {project_table} p ON p.id = q.project_id
    WHERE q.id = %(queue)s AND (%(superuser)s OR EXISTS (
        SELECT 1 FROM {Membership._meta.db_table} m
        WHERE m.project_id = q.project_id AND m.user_id = %(user)s
            AND (m.role = ANY(%(lead_roles)s) OR EXISTS (
                SELECT 1 FROM {Queue.members.through._meta.db_table} qm
                WHERE qm.queue_id = q.id AND qm.user_id = %(user)s))))
    """  # noqa: S608 - table and column names from the models, values bound


_ACCESS = _access_sql()


def access_work_queue(user: User | AnonymousUser, queue_id: int) -> Queue:
    """`selectors.access_queue(user, queue_id)` in one statement with the queue's questions
    (PostgreSQL; elsewhere that function): the queue, else Http404."""
    if connection.vendor != "postgresql" or not user.is_authenticated:
        return selectors.access_queue(user, queue_id)
    if not 1 <= queue_id <= ID_MAX:
        raise Http404("No such queue.")
    with statement_cursor() as cursor:
        cursor.execute(
            _ACCESS,
            {
                "queue": queue_id,
                "user": user.pk,
                "superuser": user.is_superuser,
                "lead_roles": [str(role) for role in selectors.LEAD_ROLES],
            },
        )
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such queue.")
    width = len(Queue._meta.concrete_fields)
    queue = instance_from_row(Queue, row[:width])
    project = instance_from_row(Project, row[width:-1])
    if not isinstance(queue, Queue) or not isinstance(project, Project):  # joined: never
        raise TypeError("The queue's row is missing.")
    queue.project = project
    questions = row[-1]
    # What `selectors.queue_questions` reads instead of querying.
    queue.questions_read = (  # type: ignore[attr-defined]
        json.loads(questions) if isinstance(questions, str) else questions or []
    )
    return queue


def _question_out(question: Question) -> dict:
    body = {
        "key": question.key,
        "type": question.type,
        "prompt": question.prompt,
        "required": question.required,
        "level": question.level,
    }
    if question.type == Question.Type.CHOICE:
        body["choices"] = question.choices
    if question.type == Question.Type.RATING:
        body.update(min=question.min_value, max=question.max_value)
        if question.anchors:
            body["anchors"] = question.anchors
    return body


class QueueListCreateApi(ReviewApiView):
    class QueueCreateInputSerializer(serializers.Serializer):
        project = serializers.SlugField()
        name = serializers.CharField(max_length=200)
        guidelines = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=MAX_GUIDELINES
        )
        annotations_per_item = serializers.IntegerField(min_value=1, max_value=50, default=3)
        min_item_agreement = serializers.FloatField(min_value=0, max_value=1, default=0.66)
        min_alpha = serializers.FloatField(min_value=-1, max_value=1, default=0.667)
        claim_timeout_minutes = serializers.IntegerField(
            min_value=1, max_value=MAX_CLAIM_TIMEOUT_MINUTES, default=30
        )
        agreement_tolerance = serializers.FloatField(
            min_value=0, max_value=MAX_RATING_POINTS, default=0.0
        )
        members = serializers.ListField(
            child=serializers.CharField(max_length=150), default=list, max_length=1000
        )
        # DRF hands max_length to the ListSerializer; the stubs do not list it.
        questions = QuestionSerializer(  # type: ignore[call-arg]
            many=True, allow_empty=False, max_length=50
        )

        def validate_questions(self, questions: list[dict]) -> list[dict]:
            keys = [q["key"] for q in questions]
            if len(set(keys)) != len(keys):
                raise ValidationError("Question keys must be distinct.")
            return questions

    @extend_schema(
        operation_id="queues_list",
        responses={200: QueueListSerializer, **error_responses()},
        parameters=[RETRY_AFTER],
    )
    def get(self, request: AuthedApiRequest) -> Response:
        queues = selectors.queues_with_progress(request.user)
        return Response(
            {
                "queues": [
                    {
                        "id": q.pk,
                        "project": q.project.slug,
                        "name": q.name,
                        "reason": q.reason or None,
                        "items": q.items_total,
                        "complete": q.items_complete,
                        "mine": q.mine_done,
                    }
                    for q in queues
                ]
            }
        )

    @extend_schema(
        request=QueueCreateInputSerializer,
        responses={
            201: QueueOutputSerializer,
            **error_responses(
                400, 403, 404, described={404: "No such project, or the caller is not its lead."}
            ),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: AuthedApiRequest) -> Response:
        data = self._valid(request.data)
        project = access_project(request.user, data.pop("project"), selectors.LEAD_ROLES)
        usernames = data.pop("members")
        members = list(
            get_user_model().objects.filter(
                username__in=usernames, gleaner_memberships__project=project
            )
        )
        missing = sorted(set(usernames) - {m.username for m in members})
        if missing:
            raise ValidationError(
                {"members": f"Not members of project {project.slug}: {', '.join(missing)}."}
            )
        queue = services.queue_create(project=project, members=members, **data)
        return Response(QueueDetailApi.body(queue), status=status.HTTP_201_CREATED)

    def _valid(self, data: object) -> dict:
        serializer = self.QueueCreateInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class QueueDetailApi(ReviewApiView):
    @staticmethod
    def body(queue) -> dict:
        return {
            "id": queue.pk,
            "project": queue.project.slug,
            "name": queue.name,
            "reason": queue.reason or None,
            "guidelines": queue.guidelines,
            "annotations_per_item": queue.annotations_per_item,
            "min_item_agreement": queue.min_item_agreement,
            "min_alpha": queue.min_alpha,
            "claim_timeout_minutes": queue.claim_timeout_minutes,
            "questions": [_question_out(q) for q in queue.questions.all()],
            "progress": selectors.queue_progress(queue),
        }

    @extend_schema(
        responses={200: QueueDetailSerializer, **error_responses(404)}, parameters=[RETRY_AFTER]
    )
    def get(self, request: AuthedApiRequest, queue_id: int) -> Response:
        queue = selectors.access_queue(request.user, queue_id)
        snapshot = selectors.latest_agreement(queue)
        body = self.body(queue)
        body["agreement"] = selectors.agreement_summary(snapshot)
        body["agreement_computed_at"] = snapshot.computed_at if snapshot else None
        if snapshot is not None:
            body["gate"] = snapshot.results.get("items", {})
            if selectors.is_project_lead(request.user, queue.project_id):
                body["annotators"] = snapshot.results.get("annotators", {})
        return Response(body)


class QueueItemsApi(ReviewApiView):
    class ItemInputSerializer(serializers.Serializer):
        content = serializers.DictField(required=False)
        generation_id = serializers.CharField(required=False, max_length=255)
        label_id = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX)
        priority = serializers.IntegerField(
            required=False, default=0, min_value=INT_MIN, max_value=INT_MAX
        )

        def validate_content(self, content: dict) -> dict:
            prompt, responses = content.get("prompt"), content.get("responses")
            limit = settings.GLEANER_MAX_TEXT_BYTES
            if isinstance(prompt, list):
                if not 1 <= len(prompt) <= MAX_MESSAGES or not all(
                    isinstance(m, dict) and isinstance(m.get("role"), str) for m in prompt
                ):
                    raise ValidationError(
                        f"prompt: a list of 1 to {MAX_MESSAGES} messages, each with a role."
                    )
            elif not isinstance(prompt, str) or not prompt:
                raise ValidationError("prompt: a string or a list of messages is required.")
            if problem := json_problem(prompt, max_depth=MAX_MESSAGE_DEPTH, max_text=limit):
                raise ValidationError(f"prompt: {problem}")
            if isinstance(prompt, str) and len(prompt.encode()) > limit:  # bytes, as for events
                raise ValidationError(f"prompt: texts must be at most {limit} bytes (UTF-8).")
            if (
                not isinstance(responses, list)
                or not 1 <= len(responses) <= 2
                or not all(isinstance(r, str) for r in responses)
            ):
                raise ValidationError("responses: a list of one or two strings is required.")
            for response in responses:
                if problem := text_problem(response):
                    raise ValidationError(f"responses: {problem}")
                if len(response.encode()) > limit:  # bytes, as for events' texts
                    raise ValidationError(
                        f"responses: texts must be at most {limit} bytes (UTF-8)."
                    )
            return {"prompt": prompt, "responses": responses}

        def validate(self, data: dict) -> dict:
            given = [k for k in ("content", "generation_id", "label_id") if k in data]
            if len(given) != 1:
                raise ValidationError(
                    {"item": "Give exactly one of content, generation_id or label_id."}
                )
            return data

    class ItemsAddInputSerializer(serializers.Serializer):
        items = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=1000)

    @extend_schema(
        request=ItemsAddInputSerializer,
        responses={
            201: ItemsAddedSerializer,
            **error_responses(400, 403, 404, described={404: "No such queue led by the caller."}),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: AuthedApiRequest, queue_id: int) -> Response:
        queue = selectors.access_queue(request.user, queue_id, lead=True)
        outer = self.ItemsAddInputSerializer(data=request.data)
        outer.is_valid(raise_exception=True)
        raw_items = outer.validated_data["items"]
        parsed, errors = [], {}
        for index, raw in enumerate(raw_items):
            serializer = self.ItemInputSerializer(data=raw)
            if serializer.is_valid():
                parsed.append(dict(serializer.validated_data))
            else:
                errors[str(index)] = serializer.errors
        if errors:
            raise ValidationError({"items": errors})
        self._resolve(queue, parsed)
        ids = services.items_add(queue=queue, items=parsed)
        return Response({"ids": ids}, status=status.HTTP_201_CREATED)

    @staticmethod
    def _resolve(queue, items: list[dict]) -> None:
        """Turn generation_id / label_id into rows of the queue's own project (404-proof:
        another project's ids are simply unknown here)."""
        gen_refs = {i["generation_id"] for i in items if "generation_id" in i}
        label_ids = {i["label_id"] for i in items if "label_id" in i}
        generations = {
            g.external_id: g
            for g in Generation.objects.filter(project=queue.project, external_id__in=gen_refs)
        }
        labels = {
            label.pk: label
            for label in Label.objects.filter(
                project=queue.project, pk__in=label_ids
            ).select_related("generation")
        }
        errors, seen = {}, set()
        for index, item in enumerate(items):
            if "generation_id" in item:
                item["generation"] = generations.get(item.pop("generation_id"))
                if item["generation"] is None:
                    errors[str(index)] = {"generation_id": "No such generation in this project."}
            elif "label_id" in item:
                label_id = item.pop("label_id")
                item["label"] = labels.get(label_id)
                if item["label"] is None:
                    errors[str(index)] = {"label_id": "No such label in this project."}
                elif label_id in seen:
                    errors[str(index)] = {"label_id": "This label is listed twice."}
                seen.add(label_id)
        if errors:
            raise ValidationError({"items": errors})


def _claim_body(assignment, queue) -> dict:  # noqa: ANN001
    assignment = selectors.assignment_for_display(assignment)
    blind = selectors.is_blind_comparison(selectors.queue_questions(queue))
    return {
        "item": selectors.item_display(assignment.item, assignment.presentation, blind=blind),
        "claim": {"expires_at": assignment.expires_at, "presentation": assignment.presentation},
    }


class QueueNextApi(ReviewApiView):
    @extend_schema(
        request=None,
        responses={
            200: ClaimSerializer,
            204: OpenApiResponse(description="Nothing left for the caller in this queue."),
            **error_responses(403, 404),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: AuthedApiRequest, queue_id: int) -> Response:
        queue = access_work_queue(request.user, queue_id)
        try:
            assignment = claims.item_claim_next(queue=queue, user=request.user)
        except claims.ClaimBusy as busy:  # items are left: never 204 "nothing left" here
            return Response(
                {"detail": str(busy)},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(claims.CLAIM_RETRY_AFTER_SECONDS)},
            )
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_claim_body(assignment, queue))


class AnnotationCreateApi(ReviewApiView):
    class AnnotationInputSerializer(serializers.Serializer):
        # Checked against the queue's questions by the service; a DictField, not a
        # JSONField, whose round trip through json.dumps recurses on deep nesting.
        answers = serializers.DictField()
        seconds_spent = serializers.FloatField(
            required=False, min_value=0, max_value=MAX_SECONDS_SPENT, allow_null=True
        )

    @extend_schema(
        request=AnnotationInputSerializer,
        responses={
            201: AnnotationSerializer,
            **error_responses(
                400,
                403,
                404,
                409,
                described={
                    400: "A bad answer: errors names each question.",
                    409: "Already answered by the caller, or the item needs no more answers.",
                },
            ),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: AuthedApiRequest, queue_id: int, item_id: int) -> Response:
        queue = access_work_queue(request.user, queue_id)
        serializer = self.AnnotationInputSerializer(data=request.data)
        if not serializer.is_valid():
            selectors.access_item(queue, item_id)  # a missing item is a 404 before a 400
            raise ValidationError(serializer.errors)
        try:
            annotation = claims.annotation_submit_to(
                queue=queue,
                item_id=item_id,
                user=request.user,
                answers=serializer.validated_data["answers"],
                seconds_spent=serializer.validated_data.get("seconds_spent"),
                questions=selectors.queue_questions(queue),  # read with the queue, in order
            )
        except Item.DoesNotExist:
            raise Http404("No such item.") from None
        except AnswersInvalid as invalid:
            selectors.access_item(queue, item_id)
            return Response({"errors": invalid.errors}, status=status.HTTP_400_BAD_REQUEST)
        except claims.ReviewConflict as conflict:
            return Response({"detail": str(conflict)}, status=status.HTTP_409_CONFLICT)
        return Response(
            {"id": annotation.pk, "item": item_id, "answers": annotation.answers},
            status=status.HTTP_201_CREATED,
        )

    class AnnotationChangeSerializer(serializers.Serializer):
        answers = serializers.DictField()

    @extend_schema(
        request=AnnotationChangeSerializer,
        responses={
            200: AnnotationSerializer,
            **error_responses(
                400,
                403,
                404,
                409,
                described={
                    400: "A bad answer: errors names each question.",
                    404: "No such queue or item, or no answer of the caller's to it.",
                    409: "The item's verdict is final (until a lead reopens it).",
                },
            ),
        },
        parameters=[RETRY_AFTER],
    )
    def put(self, request: AuthedApiRequest, queue_id: int, item_id: int) -> Response:
        """Change the caller's answers to an item (see `review.history`)."""
        queue = selectors.access_queue(request.user, queue_id)
        serializer = self.AnnotationChangeSerializer(data=request.data)
        if not serializer.is_valid():
            selectors.access_item(queue, item_id)
            raise ValidationError(serializer.errors)
        try:
            annotation = history.annotation_change(
                queue=queue,
                item_id=item_id,
                user=request.user,
                answers=serializer.validated_data["answers"],
                questions=selectors.queue_questions(queue),
            )
        except Annotation.DoesNotExist:
            raise Http404("No answer of yours to this item.") from None
        except AnswersInvalid as invalid:
            return Response({"errors": invalid.errors}, status=status.HTTP_400_BAD_REQUEST)
        except claims.ReviewConflict as conflict:
            return Response({"detail": str(conflict)}, status=status.HTTP_409_CONFLICT)
        return Response({"id": annotation.pk, "item": item_id, "answers": annotation.answers})


class ItemSkipApi(ReviewApiView):
    class SkipInputSerializer(serializers.Serializer):
        reason = serializers.CharField(
            max_length=500, required=False, allow_blank=True, trim_whitespace=False
        )

        def validate_reason(self, reason: str) -> str:
            if problem := text_problem(reason):
                raise ValidationError(problem)
            return reason.strip()

    class UnskippedSerializer(serializers.Serializer):
        unskipped = serializers.IntegerField()
        claimed = serializers.BooleanField(
            help_text="The item is the caller's claim again (else it may be offered later)."
        )

    @extend_schema(
        request=SkipInputSerializer,
        responses={
            200: SkippedSerializer,
            **error_responses(
                400, 403, 404, 409, described={409: "The caller already answered it."}
            ),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: AuthedApiRequest, queue_id: int, item_id: int) -> Response:
        queue = selectors.access_queue(request.user, queue_id)
        item = selectors.access_item(queue, item_id)
        serializer = self.SkipInputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        try:
            claims.item_skip(
                item=item, user=request.user, reason=serializer.validated_data.get("reason", "")
            )
        except claims.ReviewConflict as conflict:
            return Response({"detail": str(conflict)}, status=status.HTTP_409_CONFLICT)
        return Response({"skipped": item.pk})

    @extend_schema(
        request=None,
        responses={
            200: UnskippedSerializer,
            **error_responses(403, 404, described={404: "The caller did not skip this item."}),
        },
        parameters=[RETRY_AFTER],
    )
    def delete(self, request: AuthedApiRequest, queue_id: int, item_id: int) -> Response:
        """Undo the caller's skip (see `review.history.skip_undo`)."""
        queue = selectors.access_queue(request.user, queue_id)
        try:
            claimed = history.skip_undo(queue=queue, item_id=item_id, user=request.user)
        except Assignment.DoesNotExist:
            raise Http404("You did not skip this item.") from None
        return Response({"unskipped": item_id, "claimed": claimed is not None})


class ItemFlagApi(ReviewApiView):
    class FlagInputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=history.MAX_FLAG_REASON)

        def validate_reason(self, reason: str) -> str:
            if problem := text_problem(reason):
                raise ValidationError(problem)
            return reason

    class FlagOutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        item = serializers.IntegerField()
        reason = serializers.CharField()

    @extend_schema(
        request=FlagInputSerializer,
        responses={201: FlagOutputSerializer, **error_responses(400, 403, 404)},
        parameters=[RETRY_AFTER],
    )
    def post(self, request: AuthedApiRequest, queue_id: int, item_id: int) -> Response:
        """Flag an item for the queue's leads, with a reason."""
        queue = selectors.access_queue(request.user, queue_id)
        item = selectors.access_item(queue, item_id)
        serializer = self.FlagInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flag = history.item_flag(
            item=item, user=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(
            {"id": flag.pk, "item": item.pk, "reason": flag.reason}, status=status.HTTP_201_CREATED
        )


class AdjudicationApi(ReviewApiView):
    """A lead's final decision on an item (DESIGN.md: disputed items go to adjudication)."""

    class AdjudicationInputSerializer(serializers.Serializer):
        decision = choice_field(Adjudication.Decision.choices)
        note = serializers.CharField(
            required=False, allow_blank=True, max_length=services.MAX_ADJUDICATION_NOTE
        )

    @extend_schema(
        request=AdjudicationInputSerializer,
        responses={
            201: AdjudicationResultSerializer,
            **error_responses(400, 403, 404),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: AuthedApiRequest, queue_id: int, item_id: int) -> Response:
        queue = selectors.access_queue(request.user, queue_id, lead=True)
        item = selectors.access_item(queue, item_id)
        serializer = self.AdjudicationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        adjudication = services.item_adjudicate(
            item=item, lead=request.user, **serializer.validated_data
        )
        return Response(
            {"item": item.pk, "decision": adjudication.decision}, status=status.HTTP_201_CREATED
        )


class GoldApi(ReviewApiView):
    class GoldInputSerializer(serializers.Serializer):
        answers = serializers.DictField()

    @extend_schema(
        request=GoldInputSerializer,
        responses={
            200: GoldResultSerializer,
            **error_responses(400, 403, 404),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: AuthedApiRequest, queue_id: int, item_id: int) -> Response:
        queue = selectors.access_queue(request.user, queue_id, lead=True)
        item = selectors.access_item(queue, item_id)
        serializer = self.GoldInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            answers = services.item_set_gold(
                item=item, answers=serializer.validated_data["answers"]
            )
        except AnswersInvalid as invalid:
            return Response({"errors": invalid.errors}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"item": item.pk, "gold_answers": answers})


class HeldOutApi(ReviewApiView):
    class HeldOutInputSerializer(serializers.Serializer):
        item_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
            required=False,
            max_length=100_000,
        )
        share = serializers.FloatField(required=False, min_value=0.0001, max_value=1)
        seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=ID_MAX)

        def validate(self, data: dict) -> dict:
            if ("item_ids" in data) == ("share" in data):
                raise ValidationError({"item_ids": "Give either item_ids or share."})
            return data

    @extend_schema(
        request=HeldOutInputSerializer,
        responses={
            200: HeldOutResultSerializer,
            **error_responses(400, 403, 404),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: AuthedApiRequest, queue_id: int) -> Response:
        queue = selectors.access_queue(request.user, queue_id, lead=True)
        serializer = self.HeldOutInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        count = services.items_hold_out(queue=queue, **serializer.validated_data)
        return Response({"held_out": count})
