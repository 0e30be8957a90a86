"""Cross-store endpoints, included by ``semantic_catalog.api.urls`` under /api/semantic/."""

from django.urls import path

from semantic_catalog.crossstore import views

urlpatterns = [
    path("import/analysis", views.AnalysisImportView.as_view(), name="import-analysis"),
    path("<str:index>/match-labels", views.MatchLabelsView.as_view(), name="match-labels"),
    path("<str:index>/<str:pk>/substitutions", views.SubstitutionsView.as_view(), name="substitutions"),
    path("<str:index>/<str:pk>/matches", views.MatchesView.as_view(), name="matches"),
    path("<str:index>/categories/<str:category>/links", views.CategoryLinksView.as_view(), name="category-links"),
]
