from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from feedback import labelling, services
from tenancy.keys import api_key_create
from tests.factories import one_of_each

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_with_data(client, django_user_model, project):
    services.events_ingest(project=project, events=one_of_each())
    labelling.sessions_derive_pending()
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "model", list(admin.site._registry), ids=lambda m: f"{m._meta.app_label}.{m._meta.model_name}"
)
def test_every_admin_changelist_renders(admin_client_with_data, model):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    response = admin_client_with_data.get(url)
    assert response.status_code == 200
    first = model._default_manager.first()
    if first is not None:
        change = reverse(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[first.pk]
        )
        assert admin_client_with_data.get(change).status_code == 200


def test_policy_admin_rejects_min_above_max_naming_the_field(admin_client_with_data, project):
    policy = project.policy
    url = reverse("admin:feedback_routingpolicy_change", args=[policy.pk])
    form = admin_client_with_data.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data.update(edit_ratio_min=0.8, edit_ratio_max=0.2)
    response = admin_client_with_data.post(url, {k: v for k, v in data.items() if v is not None})
    assert response.status_code == 200
    assert "edit_ratio_min" in response.context["adminform"].form.errors
    policy.refresh_from_db()
    assert policy.edit_ratio_min == 0.05


def test_admin_creates_an_api_key_and_shows_it_once(admin_client_with_data, project):
    url = reverse("admin:tenancy_apikey_add")
    response = admin_client_with_data.post(
        url, {"project": project.pk, "name": "from admin", "rate_limit_per_minute": ""}, follow=True
    )
    shown = [str(m) for m in response.context["messages"]]
    assert any("glk_" in m for m in shown)
    assert project.api_keys.filter(name="from admin").exists()


def test_project_made_in_admin_gets_its_policy_and_default_queues(admin_client_with_data):
    from review.models import Queue
    from tenancy.models import Project

    response = admin_client_with_data.post(
        reverse("admin:tenancy_project_add"),
        {
            "slug": "fresh",
            "name": "Fresh",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content[:500]
    project = Project.objects.get(slug="fresh")
    assert project.policy.confidence_threshold == 0.9
    assert set(Queue.objects.filter(project=project).values_list("reason", flat=True)) == {
        "low_confidence",
        "high_retry",
        "abandoned",
        "qa_sample",
    }


def test_an_api_key_cannot_be_deleted_only_revoked(admin_client_with_data, project):
    key, _ = api_key_create(project=project, name="old")
    delete = reverse("admin:tenancy_apikey_delete", args=[key.pk])
    assert admin_client_with_data.post(delete, {"post": "yes"}).status_code == 403
    changelist = admin_client_with_data.get(reverse("admin:tenancy_apikey_changelist"))
    actions = [value for value, _ in changelist.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert "revoke" in actions
    assert project.api_keys.filter(pk=key.pk).exists()


def test_admin_keeps_an_item_in_its_queue(admin_client_with_data, project):
    """Annotations carry their item's queue: the admin may not move an item elsewhere."""
    from review import services as review_services
    from review.models import Item, Queue

    first = Queue.objects.create(project=project, name="First")
    second = Queue.objects.create(project=project, name="Second")
    (item_id,) = review_services.items_add(
        queue=first, items=[{"content": {"prompt": "Q?", "responses": ["A", "B"]}}]
    )
    url = reverse("admin:review_item_change", args=[item_id])
    form = admin_client_with_data.get(url).context["adminform"].form
    assert "queue" not in form.fields
    data = {name: form[name].value() for name in form.fields}
    data["queue"] = second.pk
    made = data.pop("created_at")  # a date and a time in the admin's form
    data.update(created_at_0=made.date().isoformat(), created_at_1=made.time().isoformat())
    response = admin_client_with_data.post(url, {k: v for k, v in data.items() if v is not None})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Item.objects.get(pk=item_id).queue_id == first.pk
