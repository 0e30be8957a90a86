"""`pull` and `push`: the site's export and import endpoints over HTTP, with a staff user's token."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from semantic_catalog.engine.errors import SemanticCatalogError


def register(sub: Any) -> None:
    for name, func, text in (("pull", cmd_pull, "download an export"), ("push", cmd_push, "upload vectors")):
        command = sub.add_parser(name, help=text)
        command.add_argument("url", help="the site, e.g. https://shop.example.com")
        command.add_argument("--index", required=True)
        command.add_argument("--token", default=None, help="API token of a staff user")
        command.add_argument("--timeout", type=float, default=300.0)
        command.set_defaults(func=func)
        if name == "pull":
            command.add_argument("--out", required=True, help="file to write (.jsonl or .parquet)")
            command.add_argument("--limit", type=int, default=None)
            command.add_argument("--since", default=None, help="ISO time: only rows changed after it")
        else:
            command.add_argument("vectors", help="vector file or folder from `embed`")
            command.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
            command.add_argument("--skip-invalid", action="store_true", help="apply valid records, skip invalid ones")


def _client(args: argparse.Namespace) -> Any:
    import httpx

    headers = {"Authorization": f"Token {args.token}"} if args.token else {}
    return httpx.Client(base_url=args.url.rstrip("/") + "/api/semantic/", headers=headers, timeout=args.timeout)


def _raise_for(response: Any) -> None:
    """An error answer as one line: the API's ``detail``, or for a page that is not the API's (a proxy's
    or the web server's HTML) its status and reason, never the whole page."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    if not detail:
        detail = response.reason_phrase or "error"
        if response.status_code == 413:
            detail += " (the server refuses bodies this large: raise its upload limit, or import with semantic_import)"
    line = " ".join(str(detail).split())
    raise SemanticCatalogError(f"{response.request.method} {response.request.url}: {response.status_code} {line}")


def cmd_pull(args: argparse.Namespace) -> int:
    out = Path(args.out)
    params = {"file_format": "parquet" if out.suffix == ".parquet" else "jsonl"}
    if args.limit:
        params["limit"] = str(args.limit)
    if args.since:
        params["since"] = args.since
    with _client(args) as client, client.stream("GET", f"{args.index}/export", params=params) as response:
        if response.status_code >= 400:
            response.read()
            _raise_for(response)
        with out.open("wb") as handle:
            for chunk in response.iter_bytes():
                handle.write(chunk)
    print(f"exported {args.index} to {out}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from semantic_catalog.engine.offline.records import vector_parts

    table = pa.concat_tables([pq.read_table(p) for p in vector_parts(args.vectors)])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    params = {"dry_run": "1" if args.dry_run else "0", "skip_invalid": "1" if args.skip_invalid else "0"}
    with _client(args) as client:
        response = client.post(
            f"{args.index}/import",
            params=params,
            content=buffer.getvalue(),
            headers={"Content-Type": "application/vnd.apache.parquet"},
        )
    _raise_for(response)
    print(json.dumps(response.json(), indent=2))
    return 0

