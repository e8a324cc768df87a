from django.urls import path

from review import api, quality_api

urlpatterns = [
    path("queues", api.QueueListCreateApi.as_view(), name="api-queues"),
    path("queues/<int:queue_id>", api.QueueDetailApi.as_view(), name="api-queue"),
    path("queues/<int:queue_id>/items", api.QueueItemsApi.as_view(), name="api-queue-items"),
    path("queues/<int:queue_id>/next", api.QueueNextApi.as_view(), name="api-queue-next"),
    path(
        "queues/<int:queue_id>/items/<int:item_id>/annotations",
        api.AnnotationCreateApi.as_view(),
        name="api-annotations",
    ),
    path(
        "queues/<int:queue_id>/items/<int:item_id>/skip",
        api.ItemSkipApi.as_view(),
        name="api-item-skip",
    ),
    path(
        "queues/<int:queue_id>/items/<int:item_id>/flags",
        api.ItemFlagApi.as_view(),
        name="api-item-flags",
    ),
    path(
        "queues/<int:queue_id>/items/<int:item_id>/adjudication",
        api.AdjudicationApi.as_view(),
        name="api-item-adjudication",
    ),
    path("queues/<int:queue_id>/items/<int:item_id>/gold", api.GoldApi.as_view(), name="api-gold"),
    path("queues/<int:queue_id>/held-out", api.HeldOutApi.as_view(), name="api-held-out"),
    path(
        "projects/<slug:slug>/quality",
        quality_api.ProjectQualityApi.as_view(),
        name="api-project-quality",
    ),
]
