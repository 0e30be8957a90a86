"""Schemathesis against a real HTTP server (pytest-django's live_server), over the schema the server
serves, as a staff user with a token so the staff endpoints are exercised too: no request the schema
allows (positive) or forbids (negative) gets a 5xx, and every answer has a documented status, media type
and body shape. A few examples per operation and a fixed seed keep it to about a minute."""

from __future__ import annotations

import os
import time

import httpx
import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db(transaction=True)

# SEMANTIC_CATALOG_FUZZ_EXAMPLES=200 hunts longer (by hand; CI keeps the defaults)
POSITIVE_EXAMPLES = int(os.environ.get("SEMANTIC_CATALOG_FUZZ_EXAMPLES", 25))
NEGATIVE_EXAMPLES = max(POSITIVE_EXAMPLES * 2 // 5, 1)
# Wings whose endpoints start long work (LLM calls) or need a server this test does not start (Temporal:
# without one they answer 503, as they should) are fuzzed by their own tests.
SKIPPED_PATHS = ("/api/semantic/segmentation", "/api/semantic/temporal")


@pytest.fixture
def catalog(make_product):
    return [
        make_product("Cordless drill driver", description="battery drill", brand="Makita", price="99.00"),
        make_product("Drill bit set", description="titanium bits", brand="Bosch", price="19.00"),
        make_product("Cast iron skillet", category="pans", description="searing pan", brand="Lodge"),
        make_product("Garden hose 30 m", category="hoses", store="b", brand="Gardena", price="35.00"),
    ]


def test_the_schema_states_the_bounds_in_force(client, settings):
    settings.SEMANTIC_CATALOG = {
        **settings.SEMANTIC_CATALOG,
        "MAX_LIMIT": 40,
        "MAX_QUERY_LENGTH": 80,
        "MAX_RESULT_WINDOW": 200,
    }
    schema = client.get("/api/semantic/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    search = {p["name"]: p for p in paths["/api/semantic/{index}/search"]["get"]["parameters"]}
    assert search["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 40}
    assert search["offset"]["schema"] == {"type": "integer", "default": 0, "minimum": 0, "maximum": 199}
    assert search["q"]["schema"] == {"type": "string", "minLength": 1, "maxLength": 80, "pattern": r"\S"}
    assert search["q"]["required"] and search["index"]["schema"]["enum"] == ["products"]
    assert "<field>" not in search and search["filters"]["style"] == "form" and search["filters"]["explode"]
    export = paths["/api/semantic/{index}/export"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"application/x-ndjson", "application/vnd.apache.parquet"}
    assert {"401", "403"} <= set(export["responses"]) and "401" not in paths["/api/semantic/{index}/search"]["get"][
        "responses"
    ]
    analysis = paths["/api/semantic/import/analysis"]["post"]
    body = analysis["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/AnalysisFile"}
    assert set(schema["components"]["schemas"]["AnalysisFile"]["required"]) == {
        "kind",
        "index",
        "model",
        "computed_at",
        "rows",
    }
    assert analysis["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RunReport"
    }
    upload = paths["/api/semantic/{index}/import"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/vnd.apache.parquet", "multipart/form-data"}
    assert "413" in upload["responses"] and "413" in analysis["responses"]
    hit = schema["components"]["schemas"]["Hit"]
    assert hit["properties"]["rank"] == {**hit["properties"]["rank"], "type": "integer", "minimum": 1}


def run_operation(operation, mode, examples: int, call) -> str | None:
    """Run ``examples`` generated cases of ``operation`` through ``call``; the first failure's report."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    @settings(
        max_examples=examples,
        derandomize=True,  # the same cases on every run
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the report shows the case as sent
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        call(case)

    try:
        check()
    except Unsatisfiable:  # nothing to get wrong (no parameters, no body): no negative case exists
        if mode is not GenerationMode.NEGATIVE:
            raise
    except Exception as exc:  # noqa: BLE001 - every failure is reported, with its operation
        return f"{operation.label} ({mode.value}): {exc}"
    return None


def test_no_generated_request_gets_a_5xx_or_an_undocumented_answer(catalog, live_server):
    import schemathesis
    from rest_framework.authtoken.models import Token
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    admin = User.objects.create_superuser("admin", "a@example.com", "pw")
    headers = {"Authorization": f"Token {Token.objects.create(user=admin).key}"}
    document = httpx.get(f"{live_server.url}/api/semantic/schema?format=json", headers=headers).json()
    schema = schemathesis.openapi.from_dict(document)
    conforming = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

    def positive(case):
        case.call_and_validate(base_url=live_server.url, headers=headers, checks=conforming)

    def negative(case):
        case.call_and_validate(base_url=live_server.url, headers=headers, checks=[not_a_server_error])

    failures, labels = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(SKIPPED_PATHS):
            continue
        labels.append(operation.label)
        for mode, examples, call in (
            (GenerationMode.POSITIVE, POSITIVE_EXAMPLES, positive),
            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, negative),
        ):
            started = time.perf_counter()
            failure = run_operation(operation, mode, examples, call)
            print(f"{operation.label} {mode.value}: {time.perf_counter() - started:.1f} s")
            if failure:
                failures.append(failure)
    assert "GET /api/semantic/{index}/search" in labels and "POST /api/semantic/{index}/import" in labels, labels
    assert not failures, "\n\n".join(failures)


def test_export_answers_a_client_that_accepts_only_its_media_types(catalog, client):
    """The schema says the export is application/x-ndjson or Parquet: asking for exactly that is no 406,
    and an error still comes as JSON."""
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    url = "/api/semantic/products/export"
    jsonl = client.get(url, HTTP_ACCEPT="application/x-ndjson")
    assert jsonl.status_code == 200 and jsonl["Content-Type"] == "application/x-ndjson"
    assert len(b"".join(jsonl.streaming_content).splitlines()) == len(catalog)
    parquet = client.get(url, {"file_format": "parquet"}, HTTP_ACCEPT="application/vnd.apache.parquet")
    assert parquet.status_code == 200 and parquet["Content-Type"] == "application/vnd.apache.parquet"
    bad = client.get(url, {"since": "yesterday"}, HTTP_ACCEPT="application/x-ndjson")
    assert bad.status_code == 400 and bad["Content-Type"] == "application/json" and bad.json()["detail"]
