from django.urls import path

from playground import views

app_name = "playground"
urlpatterns = [
    path("", views.chat, name="chat"),
    path("answer", views.answer, name="answer"),
    path("ended", views.ended, name="ended"),
]
