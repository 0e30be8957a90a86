from django.contrib import admin

from semantic_catalog.admin import SemanticIndexAdminMixin

from .models import Category, Product, Store


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["path", "store"]
    list_filter = ["store"]
    list_select_related = ["store", "parent__parent__parent"]


@admin.register(Product)
class ProductAdmin(SemanticIndexAdminMixin, admin.ModelAdmin):
    list_display = ["name", "brand", "price", "store", "active", "index_state"]
    list_filter = ["store", "active"]
    search_fields = ["name", "brand"]
    list_select_related = ["store"]
