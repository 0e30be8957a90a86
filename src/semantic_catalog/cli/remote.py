"""`pull` and `push`: the site's export and import endpoints over HTTP, with a staff user's token."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from semantic_catalog.engine.errors import BadFile, SemanticCatalogError


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
        pull_labels(client, args.index, out)
    return 0


def pull_labels(client: Any, index: str, export: Path) -> None:
    """The index's labelled pairs beside the export (``<export>.labels.jsonl``), as semantic_export
    writes them: none, no file (a stale one is removed). A token without the label permission, or a
    site without the endpoint, leaves the export as it is, with a note."""
    from semantic_catalog.engine.crossstore.labels import LabelledPair, labels_path, write_label_file

    path = labels_path(export)
    response = client.get(f"{index}/match-labels")
    if response.status_code in (401, 403, 404):
        print(f"labelled pairs not pulled ({response.status_code}: the token may lack LABEL_PERMISSION_CLASSES)")
        return
    _raise_for(response)
    labels = [LabelledPair.of(row["left"], row["right"], bool(row["label"])) for row in response.json()["labels"]]
    path.unlink(missing_ok=True)
    if labels:
        write_label_file(path, labels)
        print(f"{len(labels)} labelled pairs -> {path}")


def cmd_push(args: argparse.Namespace) -> int:
    """Upload the vectors as one Parquet body streamed from disk (a folder's parts are first joined
    into one temporary file, a batch at a time), so the file is never held in memory."""
    import tempfile

    from semantic_catalog.engine.offline.records import vector_parts

    parts = vector_parts(args.vectors)
    if not parts:
        raise SemanticCatalogError(f"{args.vectors}: no *.parquet vector files to push.")
    params = {"dry_run": "1" if args.dry_run else "0", "skip_invalid": "1" if args.skip_invalid else "0"}
    with tempfile.TemporaryDirectory(prefix="semantic-push-") as folder:
        path = parts[0] if len(parts) == 1 else _joined(parts, Path(folder) / "vectors.parquet")
        with _client(args) as client, path.open("rb") as body:
            response = client.post(
                f"{args.index}/import",
                params=params,
                content=body,
                headers={"Content-Type": "application/vnd.apache.parquet"},
            )
    _raise_for(response)
    print(json.dumps(response.json(), indent=2))
    return 0


def _joined(parts: list[Path], target: Path) -> Path:
    """The Parquet parts written one record batch at a time into ``target`` (the first part's schema)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for part in parts:
            try:
                for batch in pq.ParquetFile(part).iter_batches():
                    if writer is None:
                        writer = pq.ParquetWriter(target, batch.schema)
                    writer.write_batch(batch.cast(writer.schema) if batch.schema != writer.schema else batch)
            except (pa.ArrowException, ValueError) as exc:
                raise BadFile(
                    f"{part}: cannot join it to {parts[0].name} ({exc}); push the parts one by one."
                ) from None
    finally:
        if writer is not None:
            writer.close()
    return target
