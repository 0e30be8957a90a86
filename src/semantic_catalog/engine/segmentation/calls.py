"""Asking the LLM: one conversation per batch (prompt, validation, retries with the shared retry prompt),
driven concurrently by ``CallRunner``.

A stage writes each batch as a generator that yields a ``Request`` and receives the answer text; the runner
looks the request up in the cache, or sends it on a worker thread (rate-limited) and logs it as a file. The
cache index, the progress callback and the stop check are only ever called on the caller's thread (the Django
index uses the ORM), at batch boundaries.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from semantic_catalog.engine.errors import ContextOverflow, LLMError, RunCancelled
from semantic_catalog.engine.segmentation.cache import cache_key
from semantic_catalog.engine.segmentation.client import ChatClient, estimate_tokens
from semantic_catalog.engine.segmentation.logs import LogStorage, RunLog, read_call, sha256, timestamp
from semantic_catalog.engine.segmentation.prompts import PromptTemplate
from semantic_catalog.engine.segmentation.ratelimit import RateLimiter
from semantic_catalog.engine.segmentation.schemas import Limits, json_schema
from semantic_catalog.engine.segmentation.types import (
    USAGE_FIELDS,
    CallIndex,
    InteractionRecord,
    Progress,
    Stage,
    Usage,
)

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")
T = TypeVar("T")
FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)
Check = Callable[[Any], tuple[list[str], list[str]]]  # answer -> (fatal errors, id problems)


@dataclass(frozen=True)
class Request:
    interaction_type: str
    batch: int
    attempt: int
    messages: list[dict[str, str]]
    schema: dict[str, Any]
    schema_name: str
    prompt_file: str
    context: dict[str, Any]


@dataclass
class Outcome(Generic[M]):
    """A conversation's end: a valid answer, or the best schema-valid one with id problems, or None."""

    answer: M | None
    valid: bool
    errors: list[str] = field(default_factory=list)


def parse_answer(text: str, model: type[M], check: Check) -> tuple[M | None, list[str], list[str]]:
    """(answer, fatal errors, id problems) for a raw answer text."""
    match = FENCE.match(text)
    if match:
        text = match.group(1)
    if not text.strip():
        return None, ["the answer was empty"], []
    try:
        answer = model.model_validate_json(text)
    except ValidationError as exc:
        errors = []
        for error in exc.errors()[:8]:
            where = ".".join(str(p) for p in error.get("loc", ())) or "the answer"
            errors.append(f"{where}: {error.get('msg')}")
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            errors = ["the answer is not valid JSON (" + "; ".join(errors) + ")"]
        return None, errors, []
    fatal, id_problems = check(answer)
    return answer, fatal, id_problems


def conversation(
    *,
    interaction_type: str,
    batch: int,
    prompt: str,
    model: type[M],
    check: Check,
    context: dict[str, Any],
    prompt_file: str,
    retry: PromptTemplate,
    max_retries: int,
    problems: list[str],
    fits: Callable[[str], bool] | None = None,
    limits: Limits | None = None,
) -> Generator[Request, str, Outcome[M]]:
    """One batch's exchange: the prompt, then up to ``max_retries`` retries carrying the validation error
    (after the previous answer, unless ``fits`` says the three would not fit the model's context); ``limits``
    bound the lists of the schema sent (``schemas.json_schema``)."""
    schema = json_schema(model, limits)
    messages = [{"role": "user", "content": prompt}]
    best: M | None = None
    errors: list[str] = []
    for attempt in range(1, max_retries + 2):
        text = yield Request(interaction_type, batch, attempt, messages, schema, model.__name__, prompt_file, context)
        answer, fatal, id_problems = parse_answer(text, model, check)
        problems.extend(f"{interaction_type} batch {batch} attempt {attempt}: {p}" for p in id_problems)
        if answer is not None and not fatal and not id_problems:
            return Outcome(answer, True)
        if answer is not None and not fatal:
            best = answer
        errors = fatal + id_problems
        retry_prompt = retry.render(error="; ".join(errors))
        if fits is None or fits(prompt + text + retry_prompt):
            messages = [messages[0], {"role": "assistant", "content": text}, {"role": "user", "content": retry_prompt}]
        else:  # the previous answer would overflow the context: the prompt and the error only
            messages = [{"role": "user", "content": f"{prompt}\n\n{retry_prompt}"}]
    return Outcome(best, False, errors)


@dataclass
class _Job(Generic[R]):
    index: int
    gen: Generator[Request, str, R]
    weight: int  # what the job adds to progress
    request: Request | None = None


class CallRunner:
    """Runs a stage's conversations: cache first, then the LLM on up to ``concurrency`` threads."""

    def __init__(
        self,
        *,
        client: ChatClient,
        index: CallIndex,
        log: RunLog,
        limiter: RateLimiter,
        concurrency: int,
        progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool] | None,
        context_base: dict[str, Any],
    ):
        self.client = client
        self.index = index
        self.log = log
        self.limiter = limiter
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self.should_stop = should_stop
        self.context_base = context_base

    def run(
        self, stage: Stage, usage: Usage, jobs: Sequence[tuple[Generator[Request, str, R], int]], total: int
    ) -> list[R]:
        """Drives every conversation to its end; results in the jobs' order. Raises RunCancelled / LLMError."""
        started = time.monotonic()
        queue = deque(_Job(i, gen, weight) for i, (gen, weight) in enumerate(jobs))
        results: dict[int, R] = {}
        in_flight: dict[Future, _Job] = {}
        self._report(stage, 0, total)
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="segment") as pool:
            try:
                while queue or in_flight:
                    while queue and len(in_flight) < self.concurrency:
                        if self.should_stop is not None and self.should_stop():
                            raise RunCancelled("the run was stopped; run it again with its run id to resume.")
                        job = queue.popleft()
                        self._advance(job, next(job.gen), usage, pool, in_flight, results)
                        if job.index in results:  # answered from the cache alone
                            self._report(stage, sum(jobs[i][1] for i in results), total)
                    if not in_flight:
                        continue
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        job = in_flight.pop(future)
                        try:
                            text, record = future.result()
                        except ContextOverflow as exc:
                            self._refused(exc, job)
                            raise
                        self._account(usage, record, record.duration)
                        self.index.add(record)
                        try:
                            request = job.gen.send(text)
                        except StopIteration as stop:
                            results[job.index] = stop.value
                        else:
                            self._advance(job, request, usage, pool, in_flight, results)
                    self._report(stage, sum(jobs[i][1] for i in results), total)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                wait(in_flight)  # calls already sent finish and are logged (a resumed run finds them)
                for future in in_flight:
                    if future.done() and not future.cancelled() and future.exception() is None:
                        self.index.add(future.result()[1])
                raise
            finally:
                usage.seconds += time.monotonic() - started
        self._report(stage, total, total)
        return [results[i] for i in range(len(jobs))]

    def run_batches(
        self,
        stage: Stage,
        usage: Usage,
        batches: Sequence[Sequence[T]],
        make: Callable[[int, list[T]], Generator[Request, str, R]],
        total: int,
        problems: list[str],
        first: int = 1,
    ) -> list[R]:
        """``run`` over ``make(number, batch)`` for batches numbered from ``first``. A batch the server refuses
        as too long for its context (our token estimate is only an estimate) is split in two and the stage runs
        again: the answers already given come from the cache, so nothing is asked twice."""
        planned = [list(batch) for batch in batches]
        wall = 0.0
        while True:
            attempt = Usage()
            try:
                results = self.run(
                    stage, attempt, [(make(n, b), len(b)) for n, b in enumerate(planned, start=first)], total
                )
            except ContextOverflow as exc:
                wall += attempt.seconds
                if exc.job is None or len(planned[exc.job]) < 2:
                    raise LLMError(
                        f"{stage}: a prompt with a single entry is too long for the LLM server ({exc}); use a "
                        "model or server with a longer context, or shorten the texts (max_item_chars)."
                    ) from None
                batch = planned[exc.job]
                planned[exc.job : exc.job + 1] = [batch[: len(batch) // 2], batch[len(batch) // 2 :]]
                problems.append(f"{stage}: a batch of {len(batch)} was too long for the server's context; split in two")
                continue
            for name in USAGE_FIELDS:
                setattr(usage, name, getattr(usage, name) + getattr(attempt, name))
            usage.seconds += wall  # the refused attempts' time too
            return results

    def _report(self, stage: Stage, processed: int, total: int) -> None:
        if self.progress is not None:
            self.progress(Progress(stage=stage, processed=processed, total=total))

    @staticmethod
    def _account(usage: Usage, record: InteractionRecord, llm_seconds: float) -> None:
        usage.calls += 1
        usage.cached_calls += int(record.cached)
        usage.tokens_in += record.tokens_in
        usage.tokens_out += record.tokens_out
        usage.llm_seconds += llm_seconds

    def _advance(self, job: _Job, request: Request, usage: Usage, pool, in_flight, results) -> None:
        """Answers the job's requests from the cache while it can; submits the first one that is not cached."""
        while True:
            key = cache_key(self.client.model, self.client.temperature, request.messages, request.schema)
            found = self.index.find(key)
            if found is None:
                job.request = request
                in_flight[pool.submit(self._call, request, key)] = job
                return
            try:
                text, record, logged_seconds = self._cached(request, key, found)
            except ContextOverflow as exc:
                self._refused(exc, job)
                raise
            self._account(usage, record, logged_seconds)
            self.index.add(record)
            try:
                request = job.gen.send(text)
            except StopIteration as stop:
                results[job.index] = stop.value
                return

    def _refused(self, exc: ContextOverflow, job: _Job) -> None:
        """Names the batch the server found too long and indexes the logged refusal."""
        exc.job = job.index
        if exc.record is not None:
            self.index.add(exc.record)

    def _cached(self, request: Request, key: str, url: str) -> tuple[str, InteractionRecord, float]:
        """(the earlier answer, this run's record of it, the seconds the earlier call took); an earlier refusal
        for the context's length is a ``ContextOverflow`` again, without asking."""
        storage = _storage_for(self.log.storage, url)
        data = read_call(storage, url)
        metadata = data["metadata"]
        tokens = (int(metadata.get("tokens_in") or 0), int(metadata.get("tokens_out") or 0))
        record = self._record(request, key, url, sha256(storage.read(url)), tokens, 0.0, cached=True)
        if metadata.get("refused") == "context_overflow":
            exc = ContextOverflow(str(metadata.get("error") or "the LLM server said the prompt is too long"))
            exc.record = record
            raise exc
        return str(data["response"]), record, float(metadata.get("duration") or 0.0)

    def _record(
        self, request: Request, key: str, url: str, digest: str, tokens: tuple[int, int], duration: float, cached: bool
    ) -> InteractionRecord:
        """The index entry of one call's file, asked now or found in the cache."""
        return InteractionRecord(
            run_id=self.log.run_id,
            interaction_type=request.interaction_type,
            batch=request.batch,
            attempt=request.attempt,
            path=url,
            prompt_file=request.prompt_file,
            cache_key=key,
            sha256=digest,
            model=self.client.model,
            tokens_in=tokens[0],
            tokens_out=tokens[1],
            duration=duration,
            cached=cached,
        )

    def _call(self, request: Request, key: str) -> tuple[str, InteractionRecord]:
        """On a worker thread: rate limit, ask, log the call as a file. A prompt the server refuses as too long
        for its context is logged too (``refused``), so a re-run splits that batch without asking again."""
        self.limiter.acquire(estimate_tokens(request.messages))
        started = time.monotonic()
        try:
            reply = self.client.complete(request.messages, request.schema, request.schema_name)
        except ContextOverflow as exc:
            refusal = {"refused": "context_overflow", "error": str(exc)}
            payload = self._payload(request, key, time.monotonic() - started, refusal, "")
            url, digest = self.log.write_call(request.interaction_type, request.batch, request.attempt, key, payload)
            exc.record = self._record(request, key, url, digest, (0, 0), payload["metadata"]["duration"], False)
            raise
        duration = time.monotonic() - started
        answered = {
            "tokens_in": reply.tokens_in,
            "tokens_out": reply.tokens_out,
            "response_format": reply.response_format,
            "finish_reason": reply.finish_reason,
        }
        payload = self._payload(request, key, duration, answered, reply.text)
        url, digest = self.log.write_call(request.interaction_type, request.batch, request.attempt, key, payload)
        record = self._record(request, key, url, digest, (reply.tokens_in, reply.tokens_out), duration, cached=False)
        return reply.text, record

    def _payload(
        self, request: Request, key: str, duration: float, outcome: dict[str, Any], response: str
    ) -> dict[str, Any]:
        """What a call's log file holds: metadata, context, the prompt, the schema and the raw response."""
        return {
            "metadata": {
                "run_id": self.log.run_id,
                "interaction_type": request.interaction_type,
                "batch": request.batch,
                "attempt": request.attempt,
                "model": self.client.model,
                "temperature": self.client.temperature,
                "timestamp": timestamp(),
                "cache_key": key,
                "duration": round(duration, 4),
                "prompt_file": request.prompt_file,
                **outcome,
            },
            "context": {**self.context_base, **request.context},
            "prompt": request.messages[-1]["content"],
            "messages": request.messages,
            "schema": request.schema,
            "response": response,
        }


def _storage_for(storage: LogStorage, url: str) -> LogStorage:
    """The run's storage when the cached file lives there, else one opened for the file's own URL."""
    same_kind = ("://" not in url and storage.local) or url.startswith(tuple(f"{p}://" for p in _protocols(storage)))
    if same_kind and storage.fs._strip_protocol(url).startswith(storage.root + "/"):
        return storage
    return LogStorage(url.rsplit("/", 1)[0], storage.storage_options)


def _protocols(storage: LogStorage) -> tuple[str, ...]:
    protocol = storage.fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
