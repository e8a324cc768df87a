from django.urls import path

from tenancy import views

app_name = "tenancy"

urlpatterns = [
    path("<slug:slug>/team", views.team, name="team"),
    path("<slug:slug>/team/add", views.member_add, name="member_add"),
    path("<slug:slug>/team/<int:user_id>/role", views.member_role, name="member_role"),
    path("<slug:slug>/team/<int:user_id>/remove", views.member_remove, name="member_remove"),
]
