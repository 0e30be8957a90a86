from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.search_page, name="search"),
    path("product/<int:pk>/", views.product_page, name="product"),
    path("segments/", views.segments_page, name="segments"),
]
