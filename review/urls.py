from django.urls import path

from review.views import annotator, exclusions, lead, quality

app_name = "review"

urlpatterns = [
    path("", annotator.queue_list, name="queues"),
    path("q/<int:queue_id>/", annotator.work, name="work"),
    path("q/<int:queue_id>/items/<int:item_id>/submit", annotator.item_submit, name="submit"),
    path("q/<int:queue_id>/items/<int:item_id>/skip", annotator.item_skip, name="skip"),
    path("q/<int:queue_id>/items/<int:item_id>/flag", annotator.item_flag, name="flag"),
    path("q/<int:queue_id>/history", annotator.my_history, name="history"),
    path("q/<int:queue_id>/previous", annotator.previous_answer, name="previous"),
    path("q/<int:queue_id>/items/<int:item_id>/answers", annotator.my_answers, name="answers"),
    path("q/<int:queue_id>/items/<int:item_id>/unskip", annotator.skip_undo, name="unskip"),
    # The lead's pages.
    path("lead/", lead.lead_home, name="lead"),
    path("q/<int:queue_id>/overview", lead.queue_overview, name="overview"),
    path("q/<int:queue_id>/agreement", lead.queue_agreement, name="agreement"),
    path(
        "q/<int:queue_id>/agreement/recompute",
        lead.agreement_recompute,
        name="agreement_recompute",
    ),
    path(
        "q/<int:queue_id>/annotators/exclude",
        exclusions.annotator_exclude,
        name="annotator_exclude",
    ),
    path(
        "q/<int:queue_id>/annotators/include",
        exclusions.annotator_include,
        name="annotator_include",
    ),
    path("q/<int:queue_id>/disputed", lead.queue_disputed, name="disputed"),
    path(
        "q/<int:queue_id>/items/<int:item_id>/adjudicate",
        lead.item_adjudicate,
        name="adjudicate",
    ),
    path("q/<int:queue_id>/items", lead.queue_items, name="items"),
    path("q/<int:queue_id>/items/<int:item_id>/gold", lead.item_gold, name="gold"),
    path("q/<int:queue_id>/held-out", lead.items_hold_out, name="held_out"),
    path("q/<int:queue_id>/items/<int:item_id>", lead.item_detail, name="item"),
    path("q/<int:queue_id>/items/<int:item_id>/reopen", lead.item_reopen, name="reopen"),
    path("q/<int:queue_id>/items/<int:item_id>/release", lead.item_release, name="release"),
    path("q/<int:queue_id>/flags", lead.queue_flags, name="flags"),
    path("q/<int:queue_id>/flags/<int:flag_id>/resolve", lead.flag_resolve, name="flag_resolve"),
    path("projects/<slug:slug>/quality", quality.project_quality_page, name="quality"),
]
