"""Segmentation endpoints, included by ``semantic_catalog.api.urls`` under /api/semantic/."""

from django.urls import path

from semantic_catalog.segmentation import views

urlpatterns = [
    path("segmentation/start", views.StartView.as_view(), name="segmentation-start"),
    path("segmentation/<str:run_id>/status", views.StatusView.as_view(), name="segmentation-status"),
    path("segmentation/<str:run_id>/results", views.ResultsView.as_view(), name="segmentation-results"),
    path("segmentation/<str:run_id>/cancel", views.CancelView.as_view(), name="segmentation-cancel"),
]
