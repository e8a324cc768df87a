"""The annotator's hot path written out (queue access with its questions, the token lookup,
the cache's client) answers exactly as the ORM paths it replaces."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection
from django.http import Http404
from rest_framework import exceptions
from rest_framework.authtoken.models import Token

from core.cache import RedisCache
from core.storable import ID_MAX
from review import selectors
from review.api import access_work_queue
from review.models import Annotation, Queue
from tenancy.authentication import UserTokenAuthentication
from tenancy.models import Membership
from tenancy.services import membership_set
from tests.conftest import make_user, token_client
from tests.pgtrace import prepared_statements
from tests.review.conftest import GOOD, make_items

pytestmark = pytest.mark.django_db


def _outcome(access, user, queue_id):
    try:
        return access(user, queue_id).pk
    except Http404:
        return None


@pytest.fixture
def people(django_user_model, project, other_project, queue, alice, bob, carol, mel, owen):
    """Everyone who might ask for the queue, each in a different relation to it."""
    gone = make_user(django_user_model, "gone", project, Membership.Role.ANNOTATOR)
    queue.members.add(gone, mel)
    Membership.objects.filter(user=gone).delete()  # left the project, still listed
    outsider = make_user(django_user_model, "outsider")
    queue.members.add(outsider)  # listed, never a member of the project
    admin = make_user(django_user_model, "admin", project, Membership.Role.ADMIN)
    boss = django_user_model.objects.create_superuser(username="boss", password="pw-boss")
    lone = make_user(django_user_model, "lone", project, Membership.Role.ANNOTATOR)
    membership_set(project=other_project, user=carol, role=Membership.Role.ANNOTATOR)
    return {
        "alice": alice,  # annotator, queue member
        "bob": bob,
        "carol": carol,  # lead, not a queue member
        "mel": mel,  # ML, queue member
        "owen": owen,  # admin of another project
        "gone": gone,
        "outsider": outsider,
        "admin": admin,  # admin of the project, not a queue member
        "boss": boss,  # superuser
        "lone": lone,  # annotator of the project, not a queue member
    }


def test_access_answers_as_the_orm_for_everyone(people, queue, other_project):
    other = Queue.objects.create(project=other_project, name="Other")
    other.members.add(people["alice"], people["owen"])
    empty = Queue.objects.create(project=queue.project, name="No questions")
    empty.members.add(people["alice"])
    outcomes = {}
    for name, user in people.items():
        for queue_id in (queue.pk, other.pk, empty.pk, other.pk + 1000, 1, ID_MAX):
            expected = _outcome(selectors.access_queue, user, queue_id)
            assert _outcome(access_work_queue, user, queue_id) == expected, (name, queue_id)
            outcomes[name, queue_id] = expected
    # The cases mean what they say (the comparison above is not vacuous).
    assert outcomes["alice", queue.pk] == queue.pk
    assert outcomes["carol", queue.pk] == queue.pk
    assert outcomes["admin", queue.pk] == queue.pk
    assert outcomes["boss", other.pk] == other.pk
    assert outcomes["owen", other.pk] == other.pk
    for name in ("gone", "outsider", "lone", "owen"):
        assert outcomes[name, queue.pk] is None, name
    assert outcomes["alice", other.pk] is None
    assert outcomes["carol", other.pk] is None  # annotator there, not a queue member


@pytest.mark.parametrize("queue_id", [0, -1, ID_MAX + 1])
def test_access_refuses_ids_no_row_can_have(alice, queue_id):
    with pytest.raises(Http404):
        access_work_queue(alice, queue_id)


def test_access_reads_the_queue_its_project_and_questions_as_the_orm(queue, alice):
    fast = access_work_queue(alice, queue.pk)
    slow = selectors.access_queue(alice, queue.pk)
    fields = [f.attname for f in Queue._meta.concrete_fields]
    assert [getattr(fast, f) for f in fields] == [getattr(slow, f) for f in fields]
    assert fast.project.pk == slow.project.pk
    assert fast.project.slug == slow.project.slug
    question_fields = [f.attname for f in selectors.queue_questions(slow)[0]._meta.concrete_fields]
    fast_questions = selectors.queue_questions(fast)
    slow_questions = selectors.queue_questions(slow)
    assert [q.key for q in fast_questions] == ["better", "quality", "note"]
    assert [[getattr(q, f) for f in question_fields] for q in fast_questions] == [
        [getattr(q, f) for f in question_fields] for q in slow_questions
    ]


def test_claim_and_answer_over_the_api(queue, alice):
    make_items(queue, 2)
    client = token_client(alice)
    claimed = client.post(f"/api/v1/queues/{queue.pk}/next")
    assert claimed.status_code == 200
    item = claimed.json()["item"]["id"]
    response = client.post(
        f"/api/v1/queues/{queue.pk}/items/{item}/annotations", {"answers": GOOD}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["answers"] == {**GOOD}


def test_token_lookup_answers_as_drf(alice):
    token = Token.objects.create(user=alice)
    ours = UserTokenAuthentication()
    user, found = ours.authenticate_credentials(token.key)
    assert (user.pk, found.pk, found.user_id) == (alice.pk, token.key, alice.pk)
    assert [getattr(user, f.attname) for f in user._meta.concrete_fields] == [
        getattr(alice, f.attname) for f in alice._meta.concrete_fields
    ]
    with pytest.raises(exceptions.AuthenticationFailed, match="Invalid token."):
        ours.authenticate_credentials("0" * 40)
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    with pytest.raises(exceptions.AuthenticationFailed, match="User inactive or deleted."):
        ours.authenticate_credentials(token.key)


def test_a_revoked_token_is_refused_at_once(queue, alice):
    client = token_client(alice)
    assert client.post(f"/api/v1/queues/{queue.pk}/next").status_code in (200, 204)
    Token.objects.filter(user=alice).delete()
    response = client.post(f"/api/v1/queues/{queue.pk}/next")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_redis_cache_makes_one_client_per_pool_and_works():
    cache = caches["default"]
    if not isinstance(cache, RedisCache):  # in-process cache: the settings without Redis
        assert cache.__class__.__module__.startswith("django.core.cache.backends.locmem")
        return
    first = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is first
    assert cache._cache.get_client() is first  # one server: reads share the pool
    key = "test-claims-fast-paths"
    assert cache.add(key, 5, timeout=30)
    assert not cache.add(key, 6, timeout=30)
    assert cache.get(key) == 5
    cache.delete(key)
    assert cache.get(key) is None


def test_a_claim_meeting_the_one_assignment_per_item_constraint_takes_another_item(
    queue, alice, monkeypatch
):
    """The careful path read its candidates, then the caller's other tab claimed the same
    item and committed: the insert meets the (item, user) constraint. That item is passed
    over (or the other tab's claim resumed), never a 500."""
    from django.db import IntegrityError

    from review import claims
    from review.models import Assignment

    first, second = make_items(queue, 2)
    real_create = Assignment.objects.create
    refused = []

    def other_tab_first(**fields):
        if fields["item"].pk == first.pk:
            refused.append(first.pk)
            raise IntegrityError('duplicate key value violates "assignment_once_per_user"')
        return real_create(**fields)

    monkeypatch.setattr(claims, "_claim_first_free", lambda *args: None)  # the careful path
    monkeypatch.setattr(Assignment.objects, "create", other_tab_first)
    claim = claims.item_claim_next(queue=queue, user=alice)
    assert refused == [first.pk]
    assert claim is not None
    assert claim.item_id == second.pk
    assert list(Assignment.objects.filter(user=alice).values_list("item_id", flat=True)) == [
        second.pk
    ]


@pytest.mark.postgres
def test_the_hot_statements_are_prepared_once_per_connection(queue, alice):
    """Claim, answer, queue access and token login run prepared (planned once per
    connection); the answers are the same as unprepared, a NULL time spent included."""
    make_items(queue, 3)
    client = token_client(alice)
    spent = []
    for seconds in (None, 12.5, None):
        claimed = client.post(f"/api/v1/queues/{queue.pk}/next")
        assert claimed.status_code == 200
        item = claimed.json()["item"]["id"]
        body = {"answers": GOOD} if seconds is None else {"answers": GOOD, "seconds_spent": seconds}
        answered = client.post(
            f"/api/v1/queues/{queue.pk}/items/{item}/annotations", body, format="json"
        )
        assert answered.status_code == 201, answered.json()
        spent.append(Annotation.objects.get(pk=answered.json()["id"]).seconds_spent)
    assert spent == [None, 12.5, None]
    prepared = " ".join(prepared_statements().values())
    for fragment in (
        "WITH candidate AS",  # the claim
        "WITH durability AS",
        "a.presentation",  # the answer: what its values need,
        "queue_id = $2 FOR UPDATE",  # the item's lock,
        "WITH mine AS",  # and the answer
    ):
        assert fragment in prepared
    assert f"FROM {Token._meta.db_table} t JOIN" in prepared
    assert "jsonb_agg(jsonb_build_object(" in prepared  # the queue with its questions
    assert connection.connection.prepare_threshold is not None


@pytest.mark.postgres
def test_with_prepared_statements_off_nothing_is_prepared(queue, alice):
    """DB_PREPARED_STATEMENTS=0 (psycopg's prepare_threshold None, for a transaction-pooling
    PgBouncer): the same requests work and leave no prepared statement behind."""
    make_items(queue, 1)
    client = token_client(alice)
    client.get("/healthz")  # a connection to switch off
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    threshold = connection.connection.prepare_threshold
    connection.connection.prepare_threshold = None
    try:
        claimed = client.post(f"/api/v1/queues/{queue.pk}/next")
        assert claimed.status_code == 200
        item = claimed.json()["item"]["id"]
        answered = client.post(
            f"/api/v1/queues/{queue.pk}/items/{item}/annotations", {"answers": GOOD}, format="json"
        )
        assert answered.status_code == 201
        assert prepared_statements() == {}
    finally:
        connection.connection.prepare_threshold = threshold


@pytest.mark.parametrize("item_id", [ID_MAX + 1, 2**64, 10**30])
def test_an_item_id_no_row_can_have_is_a_404_on_the_prepared_path(queue, alice, item_id):
    """The submit's statements bind the URL's item id as it comes (a numeric past bigint):
    no row, a 404, never a 500."""
    make_items(queue, 1)
    response = token_client(alice).post(
        f"/api/v1/queues/{queue.pk}/items/{item_id}/annotations", {"answers": GOOD}, format="json"
    )
    assert response.status_code == 404
