"""The OpenAPI schema states the bounds in force: the settings (MAX_LIMIT, MAX_QUERY_LENGTH,
MAX_RESULT_WINDOW) and the registered index names are read when the schema is generated, so a client
(or a fuzzer such as schemathesis) learns exactly what the server accepts, not a guess fixed at import."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import AllowAny

from semantic_catalog.conf import semantic_settings
from semantic_catalog.registry import registry


class SemanticSchema(AutoSchema):
    """drf-spectacular's schema with the live bounds filled into every operation's parameters, and the
    authentication errors (401/403) of endpoints that are not open to everyone."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            bounds = self._bounds(parameter["name"], parameter["in"])
            schema = parameter.setdefault("schema", {})
            for key, value in bounds.items():
                schema.setdefault(key, value)
        if not self._open_to_all():
            error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            for code, text in (("401", "not authenticated"), ("403", "not allowed (staff only by default)")):
                operation["responses"].setdefault(code, {"content": error, "description": text})
        return operation

    def _bounds(self, name: str, location: str) -> dict[str, Any]:
        s = semantic_settings
        if location == "path" and name == "index":
            return {"enum": sorted(index.name for index in registry)}
        if location != "query":
            return {}
        if name == "limit":
            return {"minimum": 1, "maximum": s.MAX_LIMIT}
        if name == "q":
            return {"minLength": 1, "maxLength": s.MAX_QUERY_LENGTH, "pattern": r"\S"}
        if name == "offset":
            return {"minimum": 0, "maximum": max(s.MAX_RESULT_WINDOW - 1, 0)}
        return {}

    def _open_to_all(self) -> bool:
        """Whether the view lets anyone in (its permissions, however it picks them, are all AllowAny)."""
        try:
            permissions = self.view.get_permissions()
        except Exception:  # noqa: BLE001 - a view that cannot say is documented as guarded
            return False
        return all(isinstance(permission, AllowAny) for permission in permissions)
