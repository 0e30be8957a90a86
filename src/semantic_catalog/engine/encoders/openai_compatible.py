"""Encoder calling an OpenAI-compatible ``POST {base_url}/embeddings`` endpoint (OpenAI, vLLM, TEI, Ollama, ...).

httpx is imported when the first request is made, not when this module is imported.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from semantic_catalog.engine.encoders.base import Encoder
from semantic_catalog.engine.errors import ConfigurationError

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_BACKOFF = 20.0


class EmbeddingServiceError(RuntimeError):
    """The embeddings endpoint failed (5xx, unreachable, malformed answer) even after the retries."""


class OpenAICompatibleEncoder(Encoder):
    """Vectors from a remote embeddings API in the OpenAI shape.

    Options: ``base_url`` (e.g. ``https://api.openai.com/v1`` or ``http://localhost:8000/v1``), ``model``,
    ``api_key`` (sent as ``Authorization: Bearer``), ``dimension`` (None: one probe request finds it),
    ``batch_size`` (texts per request), ``timeout`` (seconds), ``max_retries`` (on 429, 5xx and connection
    errors, with exponential backoff starting at ``backoff`` seconds), ``name`` (default: ``model``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        dimension: int | None = None,
        batch_size: int = 64,
        timeout: float = 30.0,
        max_retries: int = 3,
        name: str | None = None,
        backoff: float = 0.5,
    ) -> None:
        if not base_url:
            raise ConfigurationError("OpenAICompatibleEncoder needs OPTIONS 'base_url', e.g. 'http://host:8000/v1'.")
        if not model:
            raise ConfigurationError("OpenAICompatibleEncoder needs OPTIONS 'model'.")
        if batch_size < 1:
            raise ConfigurationError("OpenAICompatibleEncoder batch_size must be at least 1.")
        if max_retries < 0:
            raise ConfigurationError("OpenAICompatibleEncoder max_retries cannot be negative.")
        if dimension is not None and dimension < 1:
            raise ConfigurationError("OpenAICompatibleEncoder dimension must be positive.")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/embeddings"
        self.model = model
        self.api_key = api_key
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.name = name or model
        self._dimension = dimension
        self._client: Any = None
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """The configured dimension, or the length of one probe embedding (asked once, then cached)."""
        if self._dimension is None:
            with self._probe_lock:
                if self._dimension is None:
                    self._dimension = len(self._request(["dimension probe"])[0])
        return self._dimension

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        import httpx
                    except ImportError as exc:
                        raise ConfigurationError(
                            "OpenAICompatibleEncoder needs httpx: pip install 'django-semantic-catalog[openai]'."
                        ) from exc
                    headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                    self._client = httpx.Client(headers=headers, timeout=self.timeout)
        return self._client

    def close(self) -> None:
        """Close the HTTP connection pool (a later request opens a new one)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _encode(self, texts: list[str]) -> np.ndarray:
        dimension = self.dimension
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            rows.extend(self._request(texts[start : start + self.batch_size]))
        lengths = sorted({len(row) for row in rows})
        if lengths != [dimension]:
            raise EmbeddingServiceError(
                f"{self.url} returned vectors of length {lengths}; expected {dimension} "
                f"(is 'dimension' right for model {self.model!r}?)."
            )
        return np.asarray(rows, dtype=np.float32)

    def _request(self, texts: list[str]) -> list[list[float]]:
        """One embeddings call (with retries); rows in the order of ``texts``."""
        client = self.client  # first: it turns a missing httpx into a ConfigurationError
        import httpx

        # The OpenAI API rejects empty strings; a space embeds as "nothing" just as well.
        payload = {"model": self.model, "input": [t if t else " " for t in texts]}
        problem, retry_after = "", None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(min(max(self.backoff * 2 ** (attempt - 1), retry_after or 0.0), MAX_BACKOFF))
            try:
                response = client.post(self.url, json=payload)
            except httpx.TransportError as exc:  # connection refused, DNS, timeouts
                problem, retry_after = f"{type(exc).__name__}: {exc}", None
                continue
            if response.status_code in RETRY_STATUSES:
                problem = f"HTTP {response.status_code}: {_server_message(response)}"
                retry_after = _seconds(response.headers.get("retry-after"))
                continue
            if response.status_code >= 400:
                message = f"Embeddings request to {self.url} failed with HTTP {response.status_code}: "
                message += _server_message(response)
                if response.status_code in (400, 401, 403, 404, 422):
                    raise ConfigurationError(message + f" (check base_url, model {self.model!r} and api_key).")
                raise EmbeddingServiceError(message)
            return self._parse(response, len(texts))
        raise EmbeddingServiceError(
            f"Embeddings request to {self.url} failed after {self.max_retries + 1} attempts: {problem}"
        )

    def _parse(self, response: Any, count: int) -> list[list[float]]:
        try:
            data = response.json()["data"]
            items = sorted(data, key=lambda item: item.get("index", 0))
            rows = [item["embedding"] for item in items]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EmbeddingServiceError(
                f"{self.url} did not answer in the OpenAI embeddings shape ({exc!r}): {response.text[:300]}"
            ) from exc
        if len(rows) != count or any(not isinstance(row, list) for row in rows):
            raise EmbeddingServiceError(f"{self.url} returned {len(rows)} embeddings for {count} inputs.")
        return rows


def _seconds(value: str | None) -> float | None:
    """A Retry-After given in seconds (the HTTP-date form is ignored: the backoff applies)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _server_message(response: Any) -> str:
    """The server's own explanation: OpenAI's {"error": {"message"}}, {"detail"}, {"message"} or the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "detail", "message"):
            if body.get(key):
                return str(body[key])
    return str(body)[:500]
