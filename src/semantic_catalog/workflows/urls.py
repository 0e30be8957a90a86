"""Temporal run endpoints, included by ``semantic_catalog.api.urls`` under /api/semantic/."""

from django.urls import path

from semantic_catalog.workflows import views

urlpatterns = [
    path("temporal/runs", views.RunsView.as_view(), name="temporal-runs"),
    path("temporal/runs/<str:run_id>", views.RunView.as_view(), name="temporal-run"),
    path("temporal/runs/<str:run_id>/cancel", views.CancelView.as_view(), name="temporal-cancel"),
]
