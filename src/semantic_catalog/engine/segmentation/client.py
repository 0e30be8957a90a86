"""The LLM client seam: ``ChatClient`` (what the pipeline needs) and ``OpenAIChatClient`` (the OpenAI chat
API through the ``openai`` package, so OpenAI, vLLM and llama.cpp servers all work).

Structured output: the client asks for ``json_schema``; a server that refuses it (a 400 / 422, as
llama-cpp-python's server does) is asked again with ``json_object`` plus the schema, and the client remembers.
Transport errors (connection, timeout, 408 / 409 / 429 / 5xx) back off exponentially; a prompt the server says
is longer than its context is a ``ContextOverflow`` (the stage splits that batch); other HTTP errors (a wrong key
or model) are an ``LLMError`` at once. Validation of the answer is the pipeline's job.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from semantic_catalog.engine.errors import ContextOverflow, LLMError
from semantic_catalog.engine.segmentation.types import SegmentationConfig

log = logging.getLogger(__name__)
RETRYABLE_STATUS = (408, 409, 429)
# OpenAI and vLLM ("maximum context length", code context_length_exceeded), llama.cpp ("exceeds the available
# context size"), llama-cpp-python ("exceed context window")
CONTEXT_OVERFLOW = re.compile(r"context[ _](length|window|size)|maximum context", re.I)


@dataclass(frozen=True)
class ChatReply:
    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str = "stop"
    response_format: str = "json_schema"  # the mode the server accepted


class ChatClient(Protocol):
    """Sends one chat conversation and returns the raw answer text; the model and temperature are the client's."""

    model: str
    temperature: float

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str) -> ChatReply: ...


class OpenAIChatClient:
    """``ChatClient`` over any OpenAI-compatible endpoint (the ``openai`` package is imported lazily)."""

    def __init__(
        self,
        config: SegmentationConfig,
        *,
        transport_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
    ):
        try:
            import openai
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise LLMError(
                "the segmentation client needs the openai package: pip install 'django-semantic-catalog[segment]'."
            ) from None
        self._openai = openai
        self.model = config.model
        self.temperature = config.temperature
        self.max_output_tokens = config.max_output_tokens
        self.transport_retries = transport_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.mode = "json_schema"
        self._lock = threading.Lock()
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "not-needed",
            timeout=config.request_timeout,
            max_retries=0,
        )

    def _response_format(self, mode: str, schema: dict[str, Any], schema_name: str) -> dict[str, Any]:
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema}}
        # llama-cpp-python's server constrains the answer with "schema"; other servers ignore it.
        return {"type": "json_object", "schema": schema}

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str) -> ChatReply:
        openai = self._openai
        attempt = 0
        refused: Exception | None = None  # json_schema's refusal, while json_object is being tried
        while True:
            mode = self.mode
            try:
                response = self._client.chat.completions.create(
                    model=self.model,
                    temperature=self.temperature,
                    messages=messages,  # type: ignore[arg-type]
                    max_tokens=self.max_output_tokens,
                    response_format=self._response_format(mode, schema, schema_name),  # type: ignore[arg-type]
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if _about_context(exc):
                    raise ContextOverflow(f"the LLM server says the prompt is too long: {_message(exc)}") from None
                if mode == "json_schema" and refused is None:
                    # Maybe the server does not know json_schema; if json_object is refused too, the
                    # request itself is wrong (a context overflow, say) and the mode goes back.
                    log.info("%s refused json_schema (%s); trying json_object", self.model, exc.status_code)
                    refused = exc
                    with self._lock:
                        self.mode = "json_object"
                    continue
                if refused is not None:
                    with self._lock:
                        self.mode = "json_schema"
                raise LLMError(f"the LLM server refused the request: {_message(refused or exc)}") from None
            except (openai.APIConnectionError, openai.APIStatusError) as exc:
                if isinstance(exc, openai.APIStatusError) and _about_context(exc):  # a server that answers 500
                    raise ContextOverflow(f"the LLM server says the prompt is too long: {_message(exc)}") from None
                if mode == "json_schema" and refused is None and _about_response_format(exc):
                    # llama-cpp-python's server refuses json_schema with a 500 naming response_format
                    log.info("%s refused json_schema (%s); trying json_object", self.model, _message(exc))
                    refused = exc
                    with self._lock:
                        self.mode = "json_object"
                    continue
                status = getattr(exc, "status_code", None)
                transient = status is None or status in RETRYABLE_STATUS or status >= 500
                if not transient:
                    raise LLMError(f"the LLM server answered {status}: {_message(exc)}") from None
                if attempt >= self.transport_retries:
                    raise LLMError(
                        f"the LLM server failed {attempt + 1} times in a row ({_message(exc)}); is it running at "
                        f"{self._client.base_url}?"
                    ) from None
                pause = min(self.backoff_max, self.backoff_base * 2**attempt)
                log.info("LLM transport error (%s); retrying in %.1f s", _message(exc), pause)
                time.sleep(pause)
                attempt += 1
                continue
            choice = response.choices[0] if response.choices else None
            text = (choice.message.content if choice and choice.message else None) or ""
            usage = response.usage
            return ChatReply(
                text=text,
                tokens_in=int(usage.prompt_tokens) if usage else estimate_tokens(messages),
                tokens_out=int(usage.completion_tokens) if usage else len(text) // 4,
                finish_reason=(choice.finish_reason if choice else None) or "stop",
                response_format=mode,
            )


def _about_response_format(exc: Exception) -> bool:
    """Whether an error answer blames the ``response_format`` (a server without ``json_schema``)."""
    text = f"{getattr(exc, 'body', '')} {exc}".lower()
    return "response_format" in text or "json_schema" in text


def _about_context(exc: Exception) -> bool:
    """Whether an error answer says the prompt does not fit the model's context."""
    return bool(CONTEXT_OVERFLOW.search(f"{getattr(exc, 'body', '')} {exc}"))


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
    return (str(exc) or type(exc).__name__)[:300]


def estimate_tokens(messages: list[dict[str, str]] | str) -> int:
    """A conservative token count without the model's tokenizer: about three characters per token."""
    if isinstance(messages, str):
        return len(messages) // 3 + 1
    return sum(len(m.get("content") or "") for m in messages) // 3 + 4 * len(messages)
