"""Cross-shop analysis for Django: its declaration mixin, server-side runs, validated results, API and admin."""

from semantic_catalog.crossstore.declaration import CrossStoreMixin

__all__ = ["CrossStoreMixin"]
