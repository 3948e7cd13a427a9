"""The `newsdesk` command: a thin click shell over the pipeline."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from newsdesk import pipeline
from newsdesk.config import DEFAULT_CONFIG_NAME, Config, load_config
from newsdesk.dates import parse_datetime
from newsdesk.errors import NewsdeskError
from newsdesk.logs import setup_logging
from newsdesk.store import Store


@dataclass
class Context:
    config_path: Path
    now_override: datetime | None
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def now(self) -> datetime:
        return self.now_override or datetime.now(UTC)

    def store(self) -> Store:
        return Store.open(self.config.database_url())


def _parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time such as 2026-11-23T07:00:00Z")
    return parsed


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=lambda: os.environ.get("NEWSDESK_CONFIG", DEFAULT_CONFIG_NAME),
    show_default="newsdesk.toml, or $NEWSDESK_CONFIG",
    help="The configuration file.",
)
@click.option(
    "--now",
    callback=_parse_now,
    metavar="ISO-TIME",
    help="Act as if it were this time (reproducible runs and tests).",
)
@click.option("-v", "--verbose", count=True, help="Log more: -v info, -vv debug.")
@click.option("--log-json", is_flag=True, help="Log JSON lines instead of key=value lines.")
@click.version_option(package_name="newsdesk")
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path, now: datetime | None, verbose: int, log_json: bool
) -> None:
    """newsdesk: news articles in; region and topic feeds and an email digest out."""
    level = {0: "warning", 1: "info"}.get(verbose, "debug")
    setup_logging(level, log_json)
    ctx.obj = Context(config_path=config_path, now_override=now)


def _fail(error: NewsdeskError) -> click.ClickException:
    return click.ClickException(str(error))


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_obj
def ingest(obj: Context, paths: tuple[Path, ...]) -> None:
    """Read articles from PATHS (files or folders; default: the seeds folder) into the store."""
    try:
        config = obj.config
        store = obj.store()
        report = pipeline.ingest(
            config, store, pipeline.make_tagger(config), paths or (config.seeds_dir,), obj.now()
        )
    except NewsdeskError as error:
        raise _fail(error) from None
    _print_ingest(report)
    if report.errors:
        sys.exit(1)


def _print_ingest(report: pipeline.IngestReport) -> None:
    for error in report.errors:
        click.echo(f"skipped {error}", err=True)
    click.echo(
        f"ingest: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.errors)} failed"
    )


@cli.command()
@click.pass_obj
def build(obj: Context) -> None:
    """Write every feed (RSS, Atom, JSON Feed), feeds.opml and index.html; only what changed."""
    try:
        config = obj.config
        report = pipeline.build(config, obj.store(), pipeline.templates_for(config), obj.now())
    except NewsdeskError as error:
        raise _fail(error) from None
    _print_build(report)


def _print_build(report: pipeline.BuildReport) -> None:
    click.echo(
        f"build: {report.feeds} feeds, {report.files_written} files written, "
        f"{report.files_unchanged} unchanged, in {report.directory}"
    )


@cli.command()
@click.pass_obj
def digest(obj: Context) -> None:
    """Send each subscriber's digest (or write it to the outbox) for the current period."""
    try:
        config = obj.config
        store = obj.store()
        subscribers = pipeline.load_subscribers(config, store)
        report = pipeline.digest(
            config, store, pipeline.templates_for(config), subscribers, obj.now()
        )
    except NewsdeskError as error:
        raise _fail(error) from None
    _print_digest(report)
    if report.errors:
        sys.exit(1)


def _print_digest(report: pipeline.DigestReport) -> None:
    for error in report.errors:
        click.echo(f"failed {error}", err=True)
    click.echo(
        f"digest: {len(report.delivered)} delivered, "
        f"{report.already_sent} already sent this period, "
        f"{report.nothing_new} with nothing new, {len(report.errors)} failed"
    )
    for where in report.delivered:
        click.echo(f"  {where}")


@cli.command()
@click.pass_obj
def run(obj: Context) -> None:
    """The main job: ingest the seeds folder, build the feeds, then the digests."""
    try:
        config = obj.config
        store = obj.store()
        templates = pipeline.templates_for(config)
        now = obj.now()
        ingested = pipeline.ingest(
            config, store, pipeline.make_tagger(config), [config.seeds_dir], now
        )
        built = pipeline.build(config, store, templates, now)
        subscribers = pipeline.load_subscribers(config, store)
        digested = pipeline.digest(config, store, templates, subscribers, now)
    except NewsdeskError as error:
        raise _fail(error) from None
    _print_ingest(ingested)
    _print_build(built)
    _print_digest(digested)
    click.echo(f"feeds: {built.directory / 'index.html'}")
    if ingested.errors or digested.errors:
        sys.exit(1)


@cli.command()
@click.pass_obj
def daemon(obj: Context) -> None:
    """Run the scheduler until SIGTERM or Ctrl-C (the same as `python scheduler.py`)."""
    from newsdesk import daemon as daemon_module

    try:
        sys.exit(daemon_module.run(obj.config))
    except NewsdeskError as error:
        raise _fail(error) from None


@cli.command()
@click.option("--explain", "with_evidence", is_flag=True, help="Add evidence and scores.")
@click.pass_obj
def tag(obj: Context, with_evidence: bool) -> None:
    """Tag JSON Lines from stdin ({"id", "title", "body", "lang"?}); write one JSON line each.

    Touches no database. Output: {"id", "countries", "subregions", "regions", "topics"}.
    """
    from newsdesk.language import detect_language

    try:
        config = obj.config
        tagger = pipeline.make_tagger(config)
    except NewsdeskError as error:
        raise _fail(error) from None
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("expected a JSON object")
            title, body = str(item.get("title") or ""), str(item.get("body") or "")
        except ValueError as error:
            click.echo(f"stdin line {number}: {error}; skipped", err=True)
            click.echo(json.dumps({"id": None, "error": str(error)}))
            continue
        language = str(item.get("lang") or "") or detect_language(
            f"{title} {body}", config.ingest.languages, config.ingest.default_language
        )
        analysis = tagger.analyze(title, body, language)
        click.echo(
            json.dumps(_tag_output(item.get("id"), analysis, with_evidence), ensure_ascii=False)
        )


def _tag_output(identifier: Any, analysis: Any, with_evidence: bool) -> dict[str, Any]:
    tags = analysis.tags
    output: dict[str, Any] = {
        "id": identifier,
        "countries": [t.code for t in tags if t.kind == "country"],
        "subregions": [
            t.label
            for t in sorted((t for t in tags if t.kind == "subregion"), key=lambda t: -t.score)
        ],
        "regions": [
            t.label for t in sorted((t for t in tags if t.kind == "region"), key=lambda t: -t.score)
        ],
        "topics": [
            {"code": t.code, "label": t.label, "score": t.score} for t in tags if t.kind == "topic"
        ],
    }
    if with_evidence:
        output["evidence"] = {
            "countries": {
                t.code: {"score": t.score, "words": list(t.evidence)}
                for t in tags
                if t.kind == "country"
            },
            "topics": {
                t.code: {"score": t.score, "words": list(t.evidence)}
                for t in tags
                if t.kind == "topic"
            },
            "mentions": [
                {
                    "country": m.country,
                    "text": m.surface,
                    "kind": m.kind,
                    "zone": m.zone,
                    "start": m.start,
                    "weight": round(m.weight, 3),
                }
                for m in analysis.regions.mentions
            ],
        }
    return output


@cli.command()
@click.argument("target")
@click.pass_obj
def explain(obj: Context, target: str) -> None:
    """Show why an article got its tags: TARGET is a stored article id or an input file."""
    from newsdesk.explain import explain_target

    try:
        click.echo(explain_target(obj.config, target, obj.now()))
    except NewsdeskError as error:
        raise _fail(error) from None


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.pass_obj
def serve(obj: Context, host: str, port: int) -> None:
    """Serve the feeds folder over HTTP (ETag, Last-Modified, 304, gzip) until Ctrl-C."""
    from newsdesk import server

    try:
        config = obj.config
    except NewsdeskError as error:
        raise _fail(error) from None
    click.echo(f"serving {config.feeds_dir} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    server.serve(config, host, port)


def main(args: list[str] | None = None, prog_name: str | None = None) -> None:
    """Console entry point."""
    cli.main(args=args, prog_name=prog_name or "newsdesk")
