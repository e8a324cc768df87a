from django.urls import path

from review import views

app_name = "review"

urlpatterns = [
    path("", views.queue_list, name="queues"),
    path("q/<int:queue_id>/", views.work, name="work"),
    path("q/<int:queue_id>/items/<int:item_id>/submit", views.item_submit, name="submit"),
    path("q/<int:queue_id>/items/<int:item_id>/skip", views.item_skip, name="skip"),
    path("q/<int:queue_id>/overview", views.queue_overview, name="overview"),
]
