"""The segmentation engine end to end over real HTTP (tests/llm_server.py), real files and a real S3-compatible
server (moto): stages, retries, fallbacks, id problems, the log tree, the cache, resuming, concurrency, the rate
limiter, storage moves, bad input and the offline `semantic-catalog segment` command."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import time
from pathlib import Path

import pytest

from semantic_catalog.engine.errors import (
    BadFile,
    ConfigurationError,
    LLMError,
    LogStorageError,
    PromptTemplateError,
    RunCancelled,
    SegmentationInputError,
)
from semantic_catalog.engine.segmentation import (
    FileCallIndex,
    Item,
    OpenAIChatClient,
    SegmentationConfig,
    move_run_logs,
    read_result,
    run_segmentation,
    validate_result,
    write_result,
)
from semantic_catalog.engine.segmentation.prompts import BUNDLED
from semantic_catalog.engine.segmentation.ratelimit import RateLimiter
from tests.llm_server import ScriptedLLMServer, llm_server_fixture  # noqa: F401 (the llm_server fixture)

WORDS = ["ayam goreng", "tahu isi", "tempe bacem", "ayam bakar", "ikan asam", "udang saus"]
FILE_NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z_b(\d+)_a(\d+)_([0-9a-f]{16})\.json$")
RUN_ID = re.compile(r"^RUN_\d{8}T\d{6}\.\d{6}Z_[0-9a-f]{12}$")


def make_items(n: int) -> list[Item]:
    return [Item(str(1000 + i), f"{WORDS[i % len(WORDS)]} resep nomor {i}") for i in range(n)]


def config_for(server: ScriptedLLMServer, **overrides) -> SegmentationConfig:
    values = {
        "model": "scripted",
        "base_url": server.base_url,
        "products_per_prompt": 10,
        "taxonomies_per_consolidation": 3,
        "products_per_refinement": 15,
        "max_retries": 2,
        "concurrency": 2,
    }
    values.update(overrides)
    return SegmentationConfig(**values)


def quick_client(config: SegmentationConfig, **kwargs) -> OpenAIChatClient:
    """The real client with short backoffs (the tests' 500s and 429s should not take seconds)."""
    return OpenAIChatClient(config, backoff_base=0.01, **kwargs)


class RecordingIndex(FileCallIndex):
    """The engine's own file index, also keeping every record it is told about."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.records = []

    def add(self, record):
        self.records.append(record)
        super().add(record)


def call_files(root: Path, run_id: str) -> dict[str, list[Path]]:
    return {
        kind: sorted((root / run_id / kind).glob("*.json"))
        for kind in ("segmentation", "consolidate_taxonomy", "refine_assignments")
    }


# -- the pipeline ---------------------------------------------------------------------------------------


def test_three_stages_end_to_end(llm_server, tmp_path):
    items = make_items(60)
    config = config_for(llm_server)
    seen = []
    result = run_segmentation(items, config, storage_url=str(tmp_path / "logs"), progress=seen.append)

    assert RUN_ID.match(result.run_id)
    names = sorted(s.name for s in result.segments)
    assert names == sorted({f"{w.split()[0].capitalize()} products" for w in WORDS})
    assert [s.id for s in result.segments] == [f"S_{i}" for i in range(1, len(result.segments) + 1)]
    by_id = {s.id: s for s in result.segments}
    assert sorted(a.item_id for a in result.refined) == sorted(i.id for i in items)
    for item, assignment in zip(items, result.refined):
        assert by_id[assignment.segment].name.lower().startswith(item.text.split()[0])
        assert assignment.confidence == pytest.approx(0.8)
    assert sum(s.item_count for s in result.segments) == 60
    assert len(result.first_pass) == 60 and all(a.segment.endswith("products") for a in result.first_pass)
    assert result.problems == []
    assert validate_result(result, [i.id for i in items]) == []
    # 6 extract batches of 10; 6 taxonomies -> 2 groups of 3 -> 1 group of 2; 4 refine batches of 15
    assert (llm_server.stage_count("extract"), llm_server.stage_count("consolidate")) == (6, 3)
    assert llm_server.stage_count("refine") == 4
    assert result.usage["extract"].calls == 6 and result.usage["refine"].tokens_in > 0
    stages = [p.stage for p in seen]
    assert stages.index("extract") < stages.index("consolidate") < stages.index("refine")
    last = {p.stage: p for p in seen}
    assert all(p.processed == p.total for p in last.values())
    assert last["extract"].total == last["refine"].total == 60


def test_every_call_is_a_file_with_metadata_context_and_checksum(llm_server, tmp_path):
    root = tmp_path / "logs"
    index = RecordingIndex(str(root))
    items = make_items(25)
    result = run_segmentation(items, config_for(llm_server), storage_url=str(root), index=index)

    run = root / result.run_id
    assert sorted(p.name for p in (run / "prompts").iterdir()) == [
        "consolidate_taxonomy_v1.txt",
        "extract_taxonomy_v1.txt",
        "refine_assignments_v1.txt",
        "shared_retry_v1.txt",
    ]
    files = call_files(root, result.run_id)
    assert [len(files[k]) for k in files] == [3, 1, 2]
    assert len(index.records) == llm_server.count == 6
    manifest = dict(reversed(line.split("  ", 1)) for line in (run / "checksums.sha256").read_text().splitlines())
    for record in index.records:
        path = Path(record.path)
        assert path.parent.parent == run and path.parent.name == record.interaction_type
        batch, attempt, key16 = FILE_NAME.match(path.name).groups()
        assert (int(batch), int(attempt), key16) == (record.batch, record.attempt, record.cache_key[:16])
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert record.sha256 == digest == manifest[f"{path.parent.name}/{path.name}"]
        assert record.prompt_file.endswith(".txt") and Path(record.prompt_file).parent == run / "prompts"
        data = json.loads(path.read_text())
        meta = data["metadata"]
        assert meta["run_id"] == result.run_id and meta["interaction_type"] == record.interaction_type
        assert meta["model"] == "scripted" and meta["temperature"] == 0.0 and meta["cache_key"] == record.cache_key
        assert meta["tokens_in"] > 0 and meta["tokens_out"] > 0 and meta["duration"] >= 0 and meta["timestamp"]
        assert data["context"]["category"] == "" and data["context"]["batch_size"] > 0
        assert data["prompt"] == data["messages"][-1]["content"] and data["response"]
        if record.interaction_type == "segmentation":
            expected = data["context"]["expected_ids"]
            assert expected == [entry["id"] for entry in data["context"]["items"]]
            assert all(f"{e['label']}: " in data["prompt"] for e in data["context"]["items"])
    assert all(name in manifest for name in ("prompts/extract_taxonomy_v1.txt", "prompts/shared_retry_v1.txt"))


def test_invalid_answers_are_retried_with_the_validation_error(llm_server, tmp_path):
    llm_server.fail_next("extract", "malformed", "wrong_schema")
    llm_server.fail_next("refine", "unknown_segment")
    items = make_items(10)
    result = run_segmentation(items, config_for(llm_server), storage_url=str(tmp_path / "logs"))

    extract_requests = [r for r in llm_server.requests if r["stage"] == "extract"]
    assert len(extract_requests) == 3
    second, third = extract_requests[1]["messages"], extract_requests[2]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"].startswith('{"segments": [{"name": "unfinished')
    assert "not valid JSON" in second[2]["content"] and "Your previous answer could not be used" in second[2]["content"]
    assert "segments: Field required" in third[2]["content"]
    refine_requests = [r for r in llm_server.requests if r["stage"] == "refine"]
    assert "S_999999, which is not one of the segments" in refine_requests[1]["messages"][2]["content"]
    attempts = sorted(
        FILE_NAME.match(p.name).group(2) for p in call_files(tmp_path / "logs", result.run_id)["segmentation"]
    )
    assert attempts == ["1", "2", "3"]
    assert validate_result(result, [i.id for i in items]) == []


def test_retries_exhausted_in_every_extract_batch_is_an_llm_error(llm_server, tmp_path):
    llm_server.fail_next("extract", "malformed", "malformed")
    with pytest.raises(LLMError, match="no extract batch gave a usable answer: extract batch 1: no usable answer"):
        run_segmentation(make_items(5), config_for(llm_server, max_retries=1), storage_url=str(tmp_path / "logs"))


def test_an_extract_batch_without_a_usable_answer_leaves_its_items_to_refinement(llm_server, tmp_path):
    llm_server.fail_next("extract", "malformed", "malformed")  # batch 1 (concurrency 1): both attempts
    items = make_items(20)
    config = config_for(llm_server, max_retries=1, concurrency=1)
    result = run_segmentation(items, config, storage_url=str(tmp_path / "logs"))
    assert validate_result(result, [i.id for i in items]) == []
    assert any(p.startswith("extract batch 1: no usable answer after 2 attempts") for p in result.problems)
    assert {a.item_id for a in result.first_pass} == {i.id for i in items[10:]}  # batch 2's items only
    refine_prompts = "\n".join(r["messages"][0]["content"] for r in llm_server.requests if r["stage"] == "refine")
    assert all(f"P_{n} (current none)" in refine_prompts for n in range(1, 11))
    assert all(a.segment for a in result.refined) and "Unclassified" not in {s.name for s in result.segments}
    # the same run again is answered from the cache: it completes the same way, asking nothing
    asked = llm_server.count
    again = run_segmentation(items, config, storage_url=str(tmp_path / "logs"))
    assert llm_server.count == asked and again.refined == result.refined


def test_an_assignment_to_an_unlisted_segment_is_retried_then_left_to_refinement(llm_server, tmp_path):
    llm_server.fail_next("extract", "unknown_segment", "unknown_segment")  # max_retries 1: both attempts
    items = make_items(10)
    result = run_segmentation(items, config_for(llm_server, max_retries=1), storage_url=str(tmp_path / "logs"))
    assert any("is assigned to 'Nonexistent', which is not one of 'segments'" in p for p in result.problems)
    assert len(result.first_pass) == 9 and items[0].id not in {a.item_id for a in result.first_pass}
    assert validate_result(result, [i.id for i in items]) == [] and len(result.refined) == 10


@pytest.mark.parametrize("status", [400, 422, 500])
def test_falls_back_to_json_object_when_the_server_refuses_json_schema(llm_server, tmp_path, status):
    llm_server.refuse_json_schema = True
    llm_server.refusal_status = status
    result = run_segmentation(make_items(20), config_for(llm_server, concurrency=1), storage_url=str(tmp_path / "logs"))
    kinds = [r["response_format"]["type"] for r in llm_server.requests]
    assert kinds[0] == "json_schema" and set(kinds[1:]) == {"json_object"}
    assert kinds.count("json_schema") == 1  # the client remembers
    assert llm_server.requests[1]["response_format"]["schema"]["title"] == "ExtractAnswer"
    some_file = call_files(tmp_path / "logs", result.run_id)["segmentation"][0]
    assert json.loads(some_file.read_text())["metadata"]["response_format"] == "json_object"
    assert len(result.refined) == 20


def test_a_request_refused_in_both_modes_is_an_llm_error(llm_server, tmp_path):
    llm_server.fail_next("any", "http400", "http400")
    config = config_for(llm_server)
    client = quick_client(config)
    with pytest.raises(LLMError, match="refused the request: scripted bad request"):
        run_segmentation(make_items(4), config, storage_url=str(tmp_path / "logs"), client=client)
    assert [r["response_format"]["type"] for r in llm_server.requests] == ["json_schema", "json_object"]
    assert client.mode == "json_schema"  # not the server's lack of json_schema: the mode goes back


def test_a_retry_that_would_overflow_the_context_leaves_the_previous_answer_out():
    from semantic_catalog.engine.segmentation.calls import conversation
    from semantic_catalog.engine.segmentation.prompts import load_template
    from semantic_catalog.engine.segmentation.schemas import RefineAnswer

    def talk(fits):
        gen = conversation(
            interaction_type="refine_assignments",
            batch=1,
            prompt="P_1 (current S_1): ayam",
            model=RefineAnswer,
            check=lambda answer: ([], []),
            context={},
            prompt_file="refine_assignments_v1.txt",
            retry=load_template("shared_retry"),
            max_retries=1,
            problems=[],
            fits=fits,
        )
        next(gen)
        return gen.send("x" * 500).messages

    assert [m["role"] for m in talk(lambda text: True)] == ["user", "assistant", "user"]
    alone = talk(lambda text: len(text) < 400)
    assert [m["role"] for m in alone] == ["user"]
    content = alone[0]["content"]
    assert content.startswith("P_1 (current S_1): ayam") and "not valid JSON" in content and "xxx" not in content


def test_consolidation_falls_back_to_the_name_merge(llm_server, tmp_path):
    llm_server.fail_next("consolidate", "malformed", "wrong_schema")
    items = make_items(30)
    result = run_segmentation(
        items,
        config_for(llm_server, max_retries=1, taxonomies_per_consolidation=20),
        storage_url=str(tmp_path / "logs"),
    )
    assert llm_server.stage_count("consolidate") == 2
    assert any("consolidate_taxonomy batch 1: no usable answer" in p and "merged by name" in p for p in result.problems)
    assert sorted(s.name for s in result.segments) == sorted({f"{w.split()[0].capitalize()} products" for w in WORDS})
    assert validate_result(result, [i.id for i in items]) == []


def test_missing_duplicated_and_unknown_ids_are_detected(llm_server, tmp_path):
    llm_server.fail_next("extract", "missing_id", "unknown_id")
    llm_server.fail_next("refine", "duplicate_id")
    items = make_items(10)
    result = run_segmentation(items, config_for(llm_server), storage_url=str(tmp_path / "logs"))
    problems = "\n".join(result.problems)
    assert "segmentation batch 1 attempt 1: missing product ids P_10" in problems
    assert "segmentation batch 1 attempt 2: unknown product ids P_999999" in problems
    assert "refine_assignments batch 1 attempt 1: duplicated product ids P_1" in problems
    assert llm_server.stage_count("extract") == 3 and llm_server.stage_count("refine") == 2
    assert validate_result(result, [i.id for i in items]) == []


def test_ids_still_missing_after_the_retries_keep_a_segment(llm_server, tmp_path):
    llm_server.fail_next("refine", "missing_id")
    items = make_items(8)
    result = run_segmentation(items, config_for(llm_server, max_retries=0), storage_url=str(tmp_path / "logs"))
    assert any("missing product ids P_8" in p for p in result.problems)
    assert any("keep their first-pass segment" in p for p in result.problems)
    assert validate_result(result, [i.id for i in items]) == []  # every item still assigned once


def test_a_second_identical_run_makes_no_llm_call(llm_server, tmp_path):
    items = make_items(40)
    config = config_for(llm_server)
    llm_server.fail_next("extract", "malformed")  # the retry is cached too: the replayed answer fails again
    first = run_segmentation(items, config, storage_url=str(tmp_path / "logs"))
    asked = llm_server.count
    assert first.usage["extract"].calls == 5
    second = run_segmentation(items, config, storage_url=str(tmp_path / "logs"))
    assert llm_server.count == asked
    assert all(u.cached_calls == u.calls for u in second.usage.values())
    assert second.segments == first.segments and second.refined == first.refined
    # the cached answers still say what they cost when they were asked
    for stage, usage in first.usage.items():
        assert usage.llm_seconds > 0  # summed over calls, which may overlap: not bounded by the wall time
        assert second.usage[stage].llm_seconds == pytest.approx(usage.llm_seconds, abs=1e-3 * usage.calls)
        assert (second.usage[stage].tokens_in, second.usage[stage].tokens_out) == (usage.tokens_in, usage.tokens_out)
    # a different temperature is a different call
    run_segmentation(items, config_for(llm_server, temperature=0.5), storage_url=str(tmp_path / "logs"))
    assert llm_server.count == 2 * asked - 1  # the same calls but the scripted malformed answer


def test_a_stopped_run_resumes_from_the_cache(llm_server, tmp_path):
    items = make_items(50)
    config = config_for(llm_server, concurrency=1)
    with ScriptedLLMServer() as reference:
        run_segmentation(items, config_for(reference, concurrency=1), storage_url=str(tmp_path / "ref"))
        clean_count = reference.count

    checks = {"n": 0}

    def stop_after_three():
        checks["n"] += 1
        return checks["n"] > 3

    root = tmp_path / "logs"
    with pytest.raises(RunCancelled):
        run_segmentation(items, config, storage_url=str(root), should_stop=stop_after_three)
    asked = llm_server.count
    assert 0 < asked < clean_count
    run_id = next(root.iterdir()).name
    result = run_segmentation(items, config, storage_url=str(root), run_id=run_id)
    assert result.run_id == run_id
    assert llm_server.count == clean_count  # nothing asked twice
    assert result.usage["extract"].cached_calls == asked
    assert len(list((root / run_id / "prompts").iterdir())) == 4
    assert validate_result(result, [i.id for i in items]) == []


def test_transport_errors_back_off_and_retry(llm_server, tmp_path):
    llm_server.fail_next("any", "http500", "http429")
    config = config_for(llm_server, concurrency=1)
    result = run_segmentation(make_items(5), config, storage_url=str(tmp_path / "a"), client=quick_client(config))
    assert result.problems == [] and llm_server.count == 2 + 2  # extract, refine (one taxonomy: no consolidation)
    llm_server.fail_next("any", "http500", "http500", "http500")
    with pytest.raises(LLMError, match="failed 2 times in a row"):
        run_segmentation(
            make_items(5), config, storage_url=str(tmp_path / "b"), client=quick_client(config, transport_retries=1)
        )


def test_a_server_that_is_down_is_a_clear_llm_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = SegmentationConfig(model="m", base_url=f"http://127.0.0.1:{port}/v1", request_timeout=2)
    with pytest.raises(LLMError, match="is it running at"):
        run_segmentation(
            make_items(3), config, storage_url=str(tmp_path), client=quick_client(config, transport_retries=1)
        )


def test_batches_run_concurrently_up_to_the_limit(tmp_path):
    with ScriptedLLMServer(delay=0.15) as server:
        config = config_for(server, products_per_prompt=5, concurrency=3)
        run_segmentation(make_items(40), config, storage_url=str(tmp_path / "logs"))
        assert server.max_in_flight == 3
        server.reset()
        run_segmentation(
            make_items(40),
            config_for(server, products_per_prompt=5, concurrency=1, category="x"),
            storage_url=str(tmp_path / "logs"),
        )
        assert server.max_in_flight == 1


def test_the_rate_limiter_paces_requests_and_tokens(llm_server, tmp_path):
    config = config_for(llm_server, products_per_prompt=5, concurrency=4, requests_per_minute=600)
    started = time.monotonic()
    run_segmentation(make_items(20), config, storage_url=str(tmp_path / "logs"))
    elapsed = time.monotonic() - started
    assert elapsed >= (llm_server.count - 1) * 0.1 * 0.9  # one request per 0.1 s, concurrency or not

    limiter = RateLimiter(tokens_per_minute=6000)  # 100 tokens/s, bursts of 1000
    started = time.monotonic()
    limiter.acquire(1000)
    assert time.monotonic() - started < 0.05
    limiter.acquire(50)
    assert time.monotonic() - started >= 0.45


def test_batches_shrink_to_fit_the_context(llm_server, tmp_path):
    items = [Item(str(i), f"{WORDS[i % 6]} " + "bumbu " * 80) for i in range(12)]
    config = config_for(llm_server, products_per_prompt=12, context_tokens=1500, max_output_tokens=400)
    result = run_segmentation(items, config, storage_url=str(tmp_path / "logs"))
    extract_prompts = [r["messages"][0]["content"] for r in llm_server.requests if r["stage"] == "extract"]
    assert len(extract_prompts) > 1
    assert all(len(p) // 3 + 1 + 400 <= 1500 for p in extract_prompts)
    assert validate_result(result, [i.id for i in items]) == []
    with pytest.raises(SegmentationInputError, match="alone does not fit"):
        run_segmentation(
            items,
            config_for(llm_server, context_tokens=600, max_output_tokens=400, max_item_chars=2000),
            storage_url=str(tmp_path / "other"),
        )


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "This model's maximum context length is {limit} tokens. However, you requested {n} tokens."),  # OpenAI
        (400, "the request exceeds the available context size, try increasing it"),  # llama.cpp's server
        (500, "Requested tokens ({n}) exceed context window of {limit}"),  # llama-cpp-python's
    ],
)
def test_a_batch_the_server_finds_too_long_is_split_and_asked_again(llm_server, tmp_path, status, message):
    # long texts: a refinement prompt (the taxonomy and its products) must be able to shrink below the limit too
    items = [Item(str(1000 + i), f"{WORDS[i % 6]} resep nomor {i} " + "dengan bumbu kuning " * 10) for i in range(40)]
    config = config_for(llm_server, concurrency=1)
    run_segmentation(items, config, storage_url=str(tmp_path / "measure"))
    extract_chars = [sum(len(m["content"]) for m in r["messages"]) for r in llm_server.requests[:4]]  # 4 extracts
    llm_server.reset()
    # our estimate lets 10 items through (context_tokens is large); the server holds fewer
    llm_server.context_chars = min(extract_chars) - 1
    llm_server.overflow_status, llm_server.overflow_message = status, message
    client = quick_client(config)
    result = run_segmentation(items, config, storage_url=str(tmp_path / "logs"), client=client)
    assert validate_result(result, [i.id for i in items]) == []
    assert "extract: a batch of 10 was too long for the server's context; split in two" in result.problems
    extract = [r for r in llm_server.requests if r["stage"] == "extract"]
    too_long = [r for r in extract if sum(len(m["content"]) for m in r["messages"]) > llm_server.context_chars]
    assert len(too_long) == 4  # each 10-item batch was refused once, then asked as two halves
    assert len(extract) - len(too_long) == 8 and result.usage["extract"].calls == 8
    assert result.segments == run_segmentation(items, config, storage_url=str(tmp_path / "measure")).segments
    logged = [json.loads(f.read_text()) for f in (tmp_path / "logs").rglob("*_b*_a*.json")]
    refused = [c for c in logged if c["metadata"].get("refused") == "context_overflow"]
    limit = llm_server.context_chars
    refused_by_server = [r for r in llm_server.requests if sum(len(m["content"]) for m in r["messages"]) > limit]
    assert len(refused) == len(refused_by_server) >= 4  # every refusal is a logged call too
    assert all(c["response"] == "" and "too long" in c["metadata"]["error"] for c in refused)
    asked = llm_server.count
    again = run_segmentation(items, config, storage_url=str(tmp_path / "logs"), client=client)
    assert llm_server.count == asked and again.refined == result.refined  # the halves' answers are cached
    # a single product the server cannot take is a clear error
    llm_server.context_chars = 10
    with pytest.raises(LLMError, match="a prompt with a single entry is too long for the LLM server"):
        run_segmentation(make_items(2), config, storage_url=str(tmp_path / "tiny"), client=client)


# -- bad input changes nothing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "no items to segment"),
        ([Item("1", "ayam"), Item("1", "tahu")], "duplicate item ids: 1"),
        ([Item("1", "ayam"), Item("2", "  ")], "item '2' has no text"),
    ],
)
def test_bad_items_are_refused_before_anything_happens(llm_server, tmp_path, items, message):
    with pytest.raises(SegmentationInputError, match=message):
        run_segmentation(items, config_for(llm_server), storage_url=str(tmp_path / "logs"))
    assert llm_server.count == 0 and not (tmp_path / "logs").exists()


def test_bad_settings_and_run_ids_are_refused(llm_server, tmp_path):
    with pytest.raises(ConfigurationError, match="taxonomies_per_consolidation must be at least 2"):
        run_segmentation(
            make_items(3), config_for(llm_server, taxonomies_per_consolidation=1), storage_url=str(tmp_path)
        )
    with pytest.raises(SegmentationInputError, match="is not a run id"):
        run_segmentation(make_items(3), config_for(llm_server), storage_url=str(tmp_path), run_id="../../etc")
    assert llm_server.count == 0 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("${products}", "(none)"), r"lacks the placeholder\(s\) \$\{products\}"),
        (lambda t: t + "\n${shop}", r"unknown placeholder\(s\) \$\{shop\}"),
        (lambda t: t + "\ncosts $ 5", "malformed placeholder"),
        (None, "extract_taxonomy_v1.txt is missing"),
    ],
)
def test_a_bad_template_is_a_configuration_error(llm_server, tmp_path, edit, message):
    prompts = tmp_path / "prompts"
    shutil.copytree(BUNDLED, prompts)
    target = prompts / "extract_taxonomy_v1.txt"
    if edit is None:
        target.unlink()
    else:
        target.write_text(edit(target.read_text()))
    with pytest.raises(PromptTemplateError, match=message):
        run_segmentation(
            make_items(3), config_for(llm_server, prompts_dir=str(prompts)), storage_url=str(tmp_path / "l")
        )
    assert llm_server.count == 0 and not (tmp_path / "l").exists()


def test_users_can_bring_their_own_templates(llm_server, tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(BUNDLED, prompts)
    target = prompts / "extract_taxonomy_v1.txt"
    target.write_text("Our own words.\n" + target.read_text())
    result = run_segmentation(
        make_items(6), config_for(llm_server, prompts_dir=str(prompts)), storage_url=str(tmp_path / "l")
    )
    assert llm_server.requests[0]["messages"][0]["content"].startswith("Our own words.")
    archived = tmp_path / "l" / result.run_id / "prompts" / "extract_taxonomy_v1.txt"
    assert archived.read_text().startswith("Our own words.")


# -- segmentation.json ----------------------------------------------------------------------------------


def test_result_file_round_trip_and_validation(llm_server, tmp_path):
    items = make_items(12)
    result = run_segmentation(items, config_for(llm_server), storage_url=str(tmp_path / "logs"))
    path = tmp_path / "out" / "segmentation.json"
    write_result(result, str(path))
    again = read_result(str(path))
    assert again == result
    assert "api_key" not in json.loads(path.read_text())["config"]
    assert validate_result(again, [i.id for i in items]) == []
    problems = validate_result(again, [str(i) for i in range(5)])
    assert problems[0].startswith("12 unknown item id(s): 1000")
    again.refined.append(again.refined[0])
    again.refined[1] = type(again.refined[1])(again.refined[1].item_id, "S_77", 0.5)
    problems = "\n".join(validate_result(again, [i.id for i in items]))
    assert "assigned more than once: 1000" in problems and "segments that do not exist: S_77" in problems
    (tmp_path / "bad.json").write_text('{"format": "semantic-catalog-segmentation", "version": 1}')
    with pytest.raises(BadFile, match="missing 'segments'"):
        read_result(str(tmp_path / "bad.json"))
    (tmp_path / "worse.json").write_text("[1, 2")
    with pytest.raises(BadFile, match="not JSON"):
        read_result(str(tmp_path / "worse.json"))


# -- S3 (a real S3-compatible server) -----------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"},
        "skip_instance_cache": True,
    }
    import boto3
    import s3fs

    endpoint = options["client_kwargs"]["endpoint_url"]
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="segment-logs")
    fs = s3fs.S3FileSystem(**options)
    yield fs, options
    server.stop()


def test_logs_on_s3_are_written_cached_and_checked(llm_server, tmp_path, s3):
    fs, options = s3
    items = make_items(20)
    config = config_for(llm_server)
    url = "s3://segment-logs/runs"
    result = run_segmentation(items, config, storage_url=url, storage_options=options)
    stored = fs.find(f"segment-logs/runs/{result.run_id}")
    assert sum("/segmentation/" in p for p in stored) == 2 and sum("/prompts/" in p for p in stored) == 4
    manifest = fs.cat_file(f"segment-logs/runs/{result.run_id}/checksums.sha256").decode()
    for line in manifest.splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(fs.cat_file(f"segment-logs/runs/{result.run_id}/{name}")).hexdigest() == digest
    asked = llm_server.count
    again = run_segmentation(items, config, storage_url=url, storage_options=options)
    assert llm_server.count == asked and again.refined == result.refined


def test_move_run_logs_local_to_s3_verifies_and_rolls_back(llm_server, tmp_path, s3):
    fs, options = s3
    root = tmp_path / "logs"
    result = run_segmentation(make_items(15), config_for(llm_server), storage_url=str(root))
    local_files = sorted(p for p in (root / result.run_id).rglob("*") if p.is_file())

    moved = move_run_logs(str(root), "s3://segment-logs/moved", result.run_id, dst_storage_options=options)
    assert len(moved) == len(local_files) and all(p.exists() for p in local_files)  # kept: not asked to delete
    for old, new, digest in moved:
        assert new.startswith(f"s3://segment-logs/moved/{result.run_id}/")
        assert hashlib.sha256(Path(old).read_bytes()).hexdigest() == digest
        assert hashlib.sha256(fs.cat_file(new)).hexdigest() == digest
    with pytest.raises(LogStorageError, match="already holds this run"):
        move_run_logs(str(root), "s3://segment-logs/moved", result.run_id, dst_storage_options=options)

    # the cache follows the logs: a run against the S3 copy asks nothing
    asked = llm_server.count
    run_segmentation(
        make_items(15), config_for(llm_server), storage_url="s3://segment-logs/moved", storage_options=options
    )
    assert llm_server.count == asked

    # rollback: move back to a fresh local folder, removing the S3 copy once verified
    back = tmp_path / "back"
    returned = move_run_logs(
        "s3://segment-logs/moved", str(back), result.run_id, delete_source=True, src_storage_options=options
    )
    assert {Path(new).name for _, new, _ in returned} == {p.name for p in local_files}
    assert not fs.exists(f"segment-logs/moved/{result.run_id}")


def test_a_corrupted_source_moves_nothing(llm_server, tmp_path, s3):
    fs, options = s3
    root = tmp_path / "logs"
    result = run_segmentation(make_items(10), config_for(llm_server), storage_url=str(root))
    victim = sorted((root / result.run_id / "segmentation").glob("*.json"))[0]
    victim.write_text(victim.read_text().replace("products", "PRODUCTS"))
    with pytest.raises(LogStorageError, match="does not match checksums.sha256"):
        move_run_logs(
            str(root), "s3://segment-logs/corrupt", result.run_id, delete_source=True, dst_storage_options=options
        )
    assert not fs.exists(f"segment-logs/corrupt/{result.run_id}") and victim.exists()
    with pytest.raises(LogStorageError, match="no such run"):
        move_run_logs(str(root), str(tmp_path / "x"), "RUN_20260101T000000Z_abcdef123456")


# -- the offline command ----------------------------------------------------------------------------------


def test_cli_segment_writes_the_log_tree_and_segmentation_json(llm_server, tmp_path, capsys):
    from semantic_catalog.cli import main
    from semantic_catalog.engine.offline.records import write_records

    items = make_items(18)
    export = tmp_path / "recipes.jsonl"
    write_records(
        export,
        ({"id": i.id, "index": "recipes", "text": i.text, "fields": {}, "content_hash": "h"} for i in items),
    )
    out = tmp_path / "out"
    code = main(
        [
            "segment",
            str(export),
            "--out",
            str(out),
            "--base-url",
            llm_server.base_url,
            "--model",
            "scripted",
            "--products-per-prompt",
            "6",
            "--products-per-refinement",
            "9",
            "--quiet",
        ]
    )
    assert code == 0
    result = read_result(str(out / "segmentation.json"))
    assert validate_result(result, [i.id for i in items]) == []
    assert result.config["products_per_prompt"] == 6
    files = call_files(out / "logs", result.run_id)
    assert [len(files[k]) for k in files] == [3, 1, 2]
    assert "wrote" in capsys.readouterr().out

    asked = llm_server.count
    code = main(
        [
            "segment",
            str(export),
            "--out",
            str(tmp_path / "out2"),
            "--logs",
            str(out / "logs"),
            "--base-url",
            llm_server.base_url,
            "--model",
            "scripted",
            "--products-per-prompt",
            "6",
            "--products-per-refinement",
            "9",
            "--ids",
            "1000,1001,1002",
            "--quiet",
        ]
    )
    assert code == 0 and len(read_result(str(tmp_path / "out2" / "segmentation.json")).refined) == 3

    code = main(
        [
            "segment",
            str(export),
            "--out",
            str(tmp_path / "out3"),
            "--base-url",
            llm_server.base_url,
            "--model",
            "scripted",
            "--ids",
            "1000,nope",
            "--quiet",
        ]
    )
    assert code == 2 and "ids not in recipes.jsonl: nope" in capsys.readouterr().err
    assert not (tmp_path / "out3").exists() and llm_server.count > asked

    asked = llm_server.count
    common = ["--base-url", llm_server.base_url, "--model", "scripted", "--logs", str(out / "logs"), "--quiet"]
    code = main(
        ["segment", str(export), "--out", str(tmp_path / "out4"), "--run-id", "RUN_20260101T000000Z_abcdef123456"]
        + common
    )
    assert code == 2 and "no run RUN_20260101T000000Z_abcdef123456 in" in capsys.readouterr().err
    code = main(
        [
            "segment",
            str(export),
            "--out",
            str(tmp_path / "out5"),
            "--run-id",
            result.run_id,
            "--products-per-prompt",
            "6",
            "--products-per-refinement",
            "9",
        ]
        + common
    )
    assert code == 0 and llm_server.count == asked  # resumed: everything from the cache
    assert read_result(str(tmp_path / "out5" / "segmentation.json")).refined == result.refined


def test_answers_read_loose_id_spellings_and_percentages_but_refuse_nonsense():
    from pydantic import ValidationError

    from semantic_catalog.engine.segmentation.schemas import RefineAnswer, json_schema

    answer = RefineAnswer.model_validate_json(
        '{"assignments": [{"product_id": "p1", "segment_id": "S-3", "confidence": 90},'
        ' {"product_id": "P 2", "segment_id": "s_1", "confidence": "0.5"}]}'
    )
    assert [(a.product_id, a.segment_id, a.confidence) for a in answer.assignments] == [
        ("P_1", "S_3", 0.9),
        ("P_2", "S_1", 0.5),
    ]
    with pytest.raises(ValidationError):
        RefineAnswer.model_validate_json(
            '{"assignments": [{"product_id": "X1", "segment_id": "S_1", "confidence": -1}]}'
        )
    schema = json_schema(RefineAnswer)
    item = schema["properties"]["assignments"]["items"]["properties"]
    assert schema["title"] == "RefineAnswer" and item["product_id"]["pattern"] == r"^P_[0-9]+$"
    assert (item["confidence"]["minimum"], item["confidence"]["maximum"]) == (0.0, 1.0)


def test_schemas_suit_llama_cpp_grammars():
    """llama.cpp's converter names grammar rules after $defs (which its parser then refuses), cannot
    parse \\d in a pattern, and writes a rule per character of a maxLength."""
    from semantic_catalog.engine.segmentation.schemas import ConsolidateAnswer, ExtractAnswer, RefineAnswer, json_schema

    for model in (ExtractAnswer, ConsolidateAnswer, RefineAnswer):
        text = json.dumps(json_schema(model))
        assert "$defs" not in text and "$ref" not in text and "\\d" not in text and "maxLength" not in text


def test_the_schema_sent_bounds_each_batch_s_lists(llm_server, tmp_path):
    """A grammar-constrained small model cannot loop on a list: extract asks for exactly as many
    assignments as the batch has products and at most as many segments; refine for exactly its batch;
    consolidate for at most the segments it was shown. Validation stays lenient (ids are checked apart)."""
    from semantic_catalog.engine.segmentation.schemas import ExtractAnswer, json_schema

    run_segmentation(make_items(13), config_for(llm_server, concurrency=1), storage_url=str(tmp_path / "logs"))
    bounds: dict[str, list] = {}
    for request in llm_server.requests:
        properties = request["response_format"]["json_schema"]["schema"]["properties"]
        bounds.setdefault(request["stage"], []).append(
            {name: (p.get("minItems"), p.get("maxItems")) for name, p in properties.items() if p.get("type") == "array"}
        )
    assert bounds["extract"] == [
        {"segments": (1, 10), "assignments": (10, 10)},
        {"segments": (1, 3), "assignments": (3, 3)},
    ]
    assert bounds["refine"] == [{"assignments": (13, 13)}]
    assert bounds["consolidate"][0]["segments"][0] == 1 and bounds["consolidate"][0]["segments"][1] >= 6
    assert "maxItems" not in json.dumps(json_schema(ExtractAnswer))  # unbounded without limits
    with pytest.raises(ValueError, match="no list field 'items'"):
        json_schema(ExtractAnswer, {"items": (1, 2)})
