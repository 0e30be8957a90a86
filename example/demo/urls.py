from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/semantic/", include("semantic_catalog.api.urls")),
    path("", include("shop.urls")),
]
