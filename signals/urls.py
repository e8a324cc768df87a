from django.urls import path

from signals import views

app_name = "signals"

urlpatterns = [
    path("<slug:slug>/signals", views.signals_page, name="page"),
    path("<slug:slug>/signals/compare", views.compare_page, name="compare"),
    path("<slug:slug>/signals/compare.csv", views.compare_csv, name="compare_csv"),
    path("<slug:slug>/signals/<slug:table>.csv", views.signals_csv, name="csv"),
]
