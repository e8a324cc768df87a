from django.urls import path

from review import quality_views, views

app_name = "review"

urlpatterns = [
    path("", views.queue_list, name="queues"),
    path("q/<int:queue_id>/", views.work, name="work"),
    path("q/<int:queue_id>/items/<int:item_id>/submit", views.item_submit, name="submit"),
    path("q/<int:queue_id>/items/<int:item_id>/skip", views.item_skip, name="skip"),
    # The lead's pages.
    path("q/<int:queue_id>/overview", views.queue_overview, name="overview"),
    path("q/<int:queue_id>/agreement", views.queue_agreement, name="agreement"),
    path(
        "q/<int:queue_id>/agreement/recompute",
        views.agreement_recompute,
        name="agreement_recompute",
    ),
    path("q/<int:queue_id>/disputed", views.queue_disputed, name="disputed"),
    path(
        "q/<int:queue_id>/items/<int:item_id>/adjudicate",
        views.item_adjudicate,
        name="adjudicate",
    ),
    path("q/<int:queue_id>/items", views.queue_items, name="items"),
    path("q/<int:queue_id>/items/<int:item_id>/gold", views.item_gold, name="gold"),
    path("q/<int:queue_id>/held-out", views.items_hold_out, name="held_out"),
    path("projects/<slug:slug>/quality", quality_views.project_quality_page, name="quality"),
]
