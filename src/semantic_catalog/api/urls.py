"""Include with ``path("api/semantic/", include("semantic_catalog.api.urls"))``."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import views

app_name = "semantic_catalog"

urlpatterns = [
    path("status", views.StatusView.as_view(), name="status"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("import/analysis", views.AnalysisImportView.as_view(), name="import-analysis"),
    path("<str:index>/search", views.SearchView.as_view(), name="search"),
    path("<str:index>/recommend", views.RecommendView.as_view(), name="recommend"),
    path("<str:index>/export", views.ExportView.as_view(), name="export"),
    path("<str:index>/import", views.ImportView.as_view(), name="import"),
    path("<str:index>/<str:pk>/similar", views.SimilarView.as_view(), name="similar"),
    path("<str:index>/<str:pk>/substitutions", views.SubstitutionsView.as_view(), name="substitutions"),
    path("<str:index>/<str:pk>/matches", views.MatchesView.as_view(), name="matches"),
    path("<str:index>/categories/<str:category>/links", views.CategoryLinksView.as_view(), name="category-links"),
]
