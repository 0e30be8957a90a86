"""The demo's index declaration: this is all a shop writes to make its products searchable."""

from semantic_catalog.crossstore import CrossStoreMixin
from semantic_catalog.indexes import FilterField, SemanticIndex

from .models import Product


def category_ids(product: Product) -> list[int]:
    """The product's category and all its ancestors, so filtering on a parent finds its subtree."""
    return [c.pk for c in product.category.ancestors()]


class ProductIndex(CrossStoreMixin, SemanticIndex):
    model = Product
    name = "products"
    text_template = "{{ name }}. {{ brand }}. {{ category.path }}. {{ description }}"
    filter_fields = ["store", "brand", "price", FilterField("category", getter=category_ids, type="int", many=True)]
    display_fields = ["name", "brand", "price", "store", "category"]
    updated_field = "updated_at"  # lets exports take only rows changed since a time
    # for cross-store analysis (CrossStoreMixin; semantic_analyze): links, substitutes, same-product matches
    shop_field = "store"  # the model's foreign key to its shop
    category_field = "category"
    title_field = "name"
    brand_field = "brand"
    price_field = "price"

    def get_queryset(self):
        return Product.objects.filter(active=True).select_related("store", "category__parent__parent__parent")
