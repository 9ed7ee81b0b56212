"""`ecrm import pinpoint`: an Amazon Pinpoint project's endpoints and templates into the platform.

The endpoints go through the customer store's own bulk import (`POST /imports`, the same path and
report as `ecrm import FILE`), the templates through personalization's `POST /templates` (checked
when saved). What was mapped and what was not is printed first; `--dry-run` stops there.
Templates are saved as new templates on every run; the import of the same export twice changes
nothing (the import recognises the file).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from ecrm_ops.pinpoint.endpoints import ExportUnreadable, ImportRows, map_export, read_export
from ecrm_ops.pinpoint.templates import TemplatesUnreadable, TranslatedTemplates, read_templates, translate_templates
from ecrm_ops.user_errors import OperatorError


@click.command("pinpoint")
@click.argument("export", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--templates",
    "template_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A Pinpoint template (get-email-template / get-sms-template output) or a folder of them; repeatable.",
)
@click.option("--source", default="pinpoint", show_default=True, help="The source name the records are imported as.")
@click.option("--locale", default="en", show_default=True, help="The locale of the translated templates.")
@click.option("--dry-run", is_flag=True, help="Only report what would be mapped; change nothing.")
@click.option("--api-url", envvar="ECRM_API_URL", help="Default: the running local cloud.")
@click.option("--token", envvar="ECRM_TOKEN", help="A staff ID token (admin or marketer). Default: a local admin.")
@click.option("--timeout", default=1800, show_default=True, help="Seconds to wait for the import to finish.")
def pinpoint(
    export: Path,
    template_paths: tuple[Path, ...],
    source: str,
    locale: str,
    dry_run: bool,
    api_url: str | None,
    token: str | None,
    timeout: int,
) -> None:
    """Import a Pinpoint endpoint export (JSON lines, .gz, or a folder of them) and Pinpoint templates."""
    try:
        rows = map_export(read_export(export))
        templates = translate_templates(read_templates(list(template_paths)), locale=locale)
    except (ExportUnreadable, TemplatesUnreadable) as error:
        raise OperatorError(str(error)) from None
    for line in [*rows.report.lines_of_text(), *(templates.lines_of_text() if template_paths else [])]:
        click.echo(line)
    if dry_run:
        click.echo("dry run: nothing was imported")
        return
    if not rows.rows and not templates.bodies:
        raise OperatorError(f"{export.name}: nothing to import (no endpoint could be mapped)")
    api_url, token = _api(api_url, token)
    if rows.rows:
        click.echo(_import_customers(rows, source=source, api_url=api_url, token=token, timeout=timeout))
    for line in _save_templates(templates, api_url=api_url, token=token):
        click.echo(line)


def _api(api_url: str | None, token: str | None) -> tuple[str, str]:
    if api_url and token:
        return api_url, token
    from ecrm_ops.local_cloud import issue_token
    from infra.local.state import CloudState

    try:
        state = CloudState.load()
    except FileNotFoundError:
        raise OperatorError(
            "no local cloud is running here: start one with `ecrm local up`, or give --api-url and --token"
        ) from None
    return api_url or state.api_url, token or issue_token(group="admin", state=state)


def _import_customers(rows: ImportRows, *, source: str, api_url: str, token: str, timeout: int) -> str:
    from ecrm_ops.customers.importer import ImportFailed, run_import

    with tempfile.TemporaryDirectory(prefix="ecrm-pinpoint-") as folder:
        records, mapping = Path(folder) / "pinpoint-customers.jsonl", Path(folder) / "mapping.json"
        records.write_text(rows.jsonl(), encoding="utf-8")
        mapping.write_text(json.dumps({"format": "jsonl", "mapping": rows.mapping}), encoding="utf-8")
        try:
            outcome = run_import(
                str(records),
                source=source,
                mapping_file=str(mapping),
                fmt="jsonl",
                api_url=api_url,
                token=token,
                timeout=timeout,
            )
        except ImportFailed as error:
            raise OperatorError(str(error)) from None
    return outcome.summary()


def _save_templates(templates: TranslatedTemplates, *, api_url: str, token: str) -> list[str]:
    from ecrm_ops.http import http

    lines = []
    for body in templates.bodies:
        saved = http("POST", f"{api_url}/templates", token=token, body=body)
        if saved.status == 201:
            lines.append(f"template {body['name']}: saved as {saved.body['template_id']}")
        else:
            detail = saved.body.get("detail") if isinstance(saved.body, dict) else saved.body
            lines.append(f"template {body['name']}: refused ({saved.status}): {detail}")
    return lines
