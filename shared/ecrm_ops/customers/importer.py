"""`ecrm import`: the same path a user takes, from the command line.

POST /imports (validated mapping, presigned upload), PUT the file, then follow GET /imports/{id}
with a progress bar until the import completes. Against the local cloud by default; against a
deployed stack with `--api-url` and `--token`.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecrm_ops.http import http


class ImportFailed(Exception):
    pass


@dataclass
class ImportOutcome:
    status: dict[str, Any]
    seconds: float

    def summary(self) -> str:
        s = self.status
        lines = [
            f"import {s['import_id']}: {s['status']} in {self.seconds:.1f}s",
            f"  rows {s.get('total_rows') or 0}: imported {s['imported_rows']}, unchanged {s['unchanged_rows']}, "
            f"errors {s['error_rows']}",
            f"  customers created {s['created_customers']}, merged {s['merged_customers']}",
        ]
        if s.get("duplicate_of"):
            lines.append(f"  the same file was already imported as {s['duplicate_of']}: nothing changed")
        if s.get("error_report_url"):
            lines.append(f"  error report: {s['error_report_url']}")
        return "\n".join(lines)


def load_request(mapping_file: str, *, source: str, fmt: str | None, file: str, region: str | None) -> dict[str, Any]:
    name = Path(mapping_file).name
    try:
        raw = json.loads(Path(mapping_file).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise ImportFailed(f"{name}: not JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except UnicodeDecodeError:
        raise ImportFailed(f"{name}: not UTF-8 text (a mapping is a JSON file)") from None
    if not isinstance(raw, dict) or not raw:
        raise ImportFailed(f'{name}: expected a JSON object, {{"column": "target", ...}} or an import request')
    request = raw if "mapping" in raw else {"mapping": raw}
    request["source"] = source
    request["format"] = fmt or request.get("format") or ("jsonl" if file.endswith((".jsonl", ".ndjson")) else "csv")
    if region:
        request["default_phone_region"] = region
    return request


def utf8_body(path: Path, encoding: str | None) -> bytes:
    """The file as the platform reads it, UTF-8: converted from `encoding`, or checked before it is uploaded (a
    file in another encoding would otherwise come back as one error row per line with an accent)."""
    from ecrm_ops.csv_input import decoding_problem

    raw = path.read_bytes()
    try:
        text = raw.decode(encoding or "utf-8")
    except UnicodeDecodeError as error:
        raise ImportFailed(decoding_problem(path, encoding or "utf-8", error)) from None
    return text.encode("utf-8") if encoding else raw


def run_import(
    file: str,
    *,
    source: str,
    mapping_file: str,
    fmt: str | None = None,
    default_phone_region: str | None = None,
    api_url: str | None = None,
    token: str | None = None,
    timeout: int = 1800,
    progress: bool = True,
    encoding: str | None = None,
) -> ImportOutcome:
    request = load_request(mapping_file, source=source, fmt=fmt, file=file, region=default_phone_region)
    body = utf8_body(Path(file), encoding)
    if api_url is None or token is None:
        from ecrm_ops.local_cloud import issue_token
        from infra.local.state import CloudState

        state = CloudState.load()
        api_url = api_url or state.api_url
        token = token or issue_token(group="admin", state=state)
    started = time.monotonic()
    opened = http("POST", f"{api_url}/imports", token=token, body=request)
    if opened.status != 201:
        raise ImportFailed(f"POST /imports -> {opened.status}: {_problem(opened.body)}")
    ticket = opened.body
    if not ticket["upload_url"].startswith(("https://", "http://127.0.0.1")):
        raise ImportFailed(f"refusing to upload to {ticket['upload_url'][:60]}")
    upload = urllib.request.Request(  # noqa: S310 - checked just above
        ticket["upload_url"],
        data=body,
        method="PUT",
        headers=ticket["upload_headers"],
    )
    with urllib.request.urlopen(upload, timeout=300) as response:  # noqa: S310 - our own presigned URL
        if response.status not in (200, 204):
            raise ImportFailed(f"upload -> HTTP {response.status}")
    status = _follow(api_url, token, ticket["import_id"], timeout, progress)
    if status["status"] == "failed":
        raise ImportFailed(f"import {ticket['import_id']} failed: {status.get('failure')}")
    return ImportOutcome(status, time.monotonic() - started)


def _problem(body: Any) -> str:
    """A problem+json answer in one line: its detail (which names each field in a validation problem)."""
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)
    return str(body)


def _follow(api_url: str, token: str, import_id: str, timeout: int, progress: bool) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + timeout
    with Progress(
        TextColumn("[bold]import[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task(import_id, total=None)
        while True:
            current = http("GET", f"{api_url}/imports/{import_id}", token=token)
            if current.status != 200:
                raise ImportFailed(f"GET /imports/{import_id} -> {current.status}: {current.body}")
            status: dict[str, Any] = current.body
            bar.update(
                task,
                total=status.get("total_rows"),
                completed=status["processed_rows"],
                description=f"{import_id} {status['status']}",
            )
            if status["status"] in {"completed", "failed", "duplicate"}:
                return status
            if time.monotonic() > deadline:
                raise ImportFailed(f"import {import_id} still {status['status']} after {timeout}s")
            time.sleep(0.5)
