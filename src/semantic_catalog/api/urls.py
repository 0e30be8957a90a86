"""Include with ``path("api/semantic/", include("semantic_catalog.api.urls"))``."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from semantic_catalog.api import views
from semantic_catalog.crossstore.urls import urlpatterns as crossstore_urls
from semantic_catalog.segmentation.urls import urlpatterns as segmentation_urls
from semantic_catalog.workflows.urls import urlpatterns as temporal_urls

app_name = "semantic_catalog"

urlpatterns = [
    path("status", views.StatusView.as_view(), name="status"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("<str:index>/search", views.SearchView.as_view(), name="search"),
    path("<str:index>/recommend", views.RecommendView.as_view(), name="recommend"),
    path("<str:index>/export", views.ExportView.as_view(), name="export"),
    path("<str:index>/import", views.ImportView.as_view(), name="import"),
    path("<str:index>/<str:pk>/similar", views.SimilarView.as_view(), name="similar"),
    *crossstore_urls,
    *segmentation_urls,
    *temporal_urls,
]
