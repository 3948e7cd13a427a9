"""The `newsdesk` command: a thin click shell over the pipeline."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from newsdesk import pipeline
from newsdesk.config import DEFAULT_CONFIG_NAME, Config, load_config
from newsdesk.dates import parse_datetime
from newsdesk.errors import NewsdeskError
from newsdesk.logs import setup_logging
from newsdesk.store import Store

FC = TypeVar("FC", bound=Callable[..., Any] | click.Command)


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
@click.argument("targets", nargs=-1)
@click.pass_obj
def ingest(obj: Context, targets: tuple[str, ...]) -> None:
    """Read articles from TARGETS into the store: files, folders, or feed and page URLs.

    Without TARGETS: the seeds folder and every configured source that is due. URLs are
    fetched once and leave the configuration alone.
    """
    urls = [t for t in targets if t.startswith(("http://", "https://"))]
    paths = [Path(t) for t in targets if t not in urls]
    try:
        config = obj.config
        store = obj.store()
        tagger = pipeline.make_tagger(config)
        now = obj.now()
        if not targets:
            report = pipeline.ingest_all(config, store, tagger, [config.seeds_dir], now)
        else:
            report = pipeline.IngestReport()
            if paths:
                report.absorb(pipeline.ingest(config, store, tagger, paths, now))
            if urls:
                report.absorb(pipeline.ingest_urls(config, store, tagger, urls, now))
    except NewsdeskError as error:
        raise _fail(error) from None
    _print_ingest(report)
    if report.errors:
        sys.exit(1)


def _print_ingest(report: pipeline.IngestReport) -> None:
    for error in report.errors:
        click.echo(f"skipped {error}", err=True)
    for warning in report.warnings:
        click.echo(f"warning {warning}", err=True)
    merged = f", {report.merged} merged with a story from another source" if report.merged else ""
    click.echo(
        f"ingest: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.errors)} failed{merged}"
    )
    if report.sources:
        click.echo(f"sources: {report.sources} read, {report.not_modified} not modified")


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
    if report.files_removed:
        click.echo(f"build: {report.files_removed} files of feeds that no longer exist removed")
    if report.hub_notified is False:
        click.echo("build: the WebSub hub was not notified (see the log)", err=True)


@cli.group(invoke_without_command=True)
@click.pass_context
def digest(ctx: click.Context) -> None:
    """Send each subscriber's digest (or write it to the outbox) for the current period.

    `newsdesk digest` alone is `newsdesk digest send`.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(digest_send)


@digest.command("send")
@click.pass_obj
def digest_send(obj: Context) -> None:
    """Deliver the current period's digests: once per subscriber and period."""
    try:
        config = obj.config
        store = obj.store()
        now = obj.now()
        subscribers = pipeline.load_subscribers(config, store, now)
        report = pipeline.digest(config, store, pipeline.templates_for(config), subscribers, now)
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
        f"{report.failed_before} refused earlier this period, "
        f"{report.nothing_new} with nothing new, {len(report.errors)} failed"
    )
    for where in report.delivered:
        click.echo(f"  {where}")


@cli.command()
@click.pass_obj
def run(obj: Context) -> None:
    """The main job: ingest the seeds folder and due sources, build the feeds, then digests."""
    try:
        config = obj.config
        store = obj.store()
        templates = pipeline.templates_for(config)
        now = obj.now()
        ingested = pipeline.ingest_all(
            config, store, pipeline.make_tagger(config), [config.seeds_dir], now
        )
        built = pipeline.build(config, store, templates, now)
        subscribers = pipeline.load_subscribers(config, store, now)
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
        sys.exit(daemon_module.run(obj.config, obj.config_path))
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


@cli.group(invoke_without_command=True)
@click.pass_context
def sources(ctx: click.Context) -> None:
    """List the configured and imported sources with their fetch state."""
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    try:
        config = obj.config
        store = obj.store()
        now = obj.now()
        pipeline.web_sources(config, store, now)  # registers new config entries
        rows = pipeline.source_rows(config, store)
    except NewsdeskError as error:
        raise _fail(error) from None
    if not rows:
        click.echo("no sources: add [[sources]] to the config or `newsdesk sources import-opml`")
        return
    for row in rows:
        click.echo(f"{row.name}  [{row.origin}, {row.kind or 'kind unknown'}] {row.url}")
        state = row.state
        if state is None or state.last_fetch is None:
            fetched = "never fetched"
        else:
            fetched = f"last fetch {_when(state.last_fetch)}: {state.status or '-'}"
            fetched += f", {state.items} items"
        enabled = "" if row.enabled else "  (disabled)"
        click.echo(f"    {fetched}{enabled}")
        if state is not None and (state.error_count or state.last_error):
            click.echo(f"    errors: {state.error_count}; last: {state.last_error or '-'}")
        if state is not None and state.next_fetch is not None and row.enabled:
            label = "next retry" if state.error_count else "next fetch"
            click.echo(f"    {label} {_when(state.next_fetch)}")


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@sources.command("import-opml")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def sources_import_opml(obj: Context, file: Path) -> None:
    """Add the feeds of a reader's OPML subscription list as sources (kept in the database)."""
    try:
        report = pipeline.import_opml(obj.config, obj.store(), file, obj.now())
    except NewsdeskError as error:
        raise _fail(error) from None
    for problem in report.problems:
        click.echo(f"skipped {problem}", err=True)
    click.echo(
        f"import-opml: {len(report.added)} sources added, "
        f"{len(report.already_known)} already known, {len(report.problems)} skipped"
    )
    for name in report.added:
        click.echo(f"  {name}")


@digest.command("preview")
@click.argument("email")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the files (default: the outbox folder).",
)
@click.pass_obj
def digest_preview(obj: Context, email: str, out_dir: Path | None) -> None:
    """Render EMAIL's digest to an .html and a .txt file without sending it; print the paths."""
    from newsdesk.preview import write_preview

    try:
        config = obj.config
        store = obj.store()
        now = obj.now()
        pipeline.load_subscribers(config, store, now)
        result = write_preview(config, store, email, out_dir or config.outbox_dir, now)
    except NewsdeskError as error:
        raise _fail(error) from None
    if result.note:
        click.echo(result.note, err=True)
    click.echo(str(result.html_path))
    click.echo(str(result.text_path))


@cli.group()
def subscribers() -> None:
    """Manage the subscribers kept in the database."""


def _list_option(name: str, what: str) -> Callable[[FC], FC]:
    return click.option(name, default="", help=f"{what}, separated by commas.")


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="Used in the greeting.")
@_list_option("--regions", "M49 region or sub-region names or codes (Europe, Eastern Asia)")
@_list_option("--countries", "ISO 3166-1 alpha-2 codes (FR, JP)")
@_list_option("--topics", "IPTC Media Topic codes (medtop:15000000)")
@click.option("--language", type=click.Choice(["en", "fr"]), default="en", show_default=True)
@click.option(
    "--frequency", type=click.Choice(["daily", "weekly"]), default="daily", show_default=True
)
@click.option("--time", "send_time", default="07:00", show_default=True, help="HH:MM to send at.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
@click.pass_obj
def subscribers_add(
    obj: Context,
    email: str,
    name: str,
    regions: str,
    countries: str,
    topics: str,
    language: str,
    frequency: str,
    send_time: str,
    timezone: str,
) -> None:
    """Add a subscriber, or update one (and subscribe them again if they had left)."""
    from newsdesk.subscribers import SubscriberInvalid, make_subscriber, split_list

    try:
        subscriber = make_subscriber(
            email,
            name=name,
            regions=split_list(regions),
            countries=split_list(countries),
            topics=split_list(topics),
            language=language,
            frequency=frequency,
            time=send_time,
            timezone=timezone,
            custom_regions=[region.name for region in obj.config.regions],
        )
    except SubscriberInvalid as error:
        raise click.ClickException(str(error)) from None
    try:
        result = obj.store().upsert_subscriber(subscriber, "cli", obj.now(), status="active")
    except NewsdeskError as error:
        raise _fail(error) from None
    click.echo(f"{result} {subscriber.email}")


@subscribers.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include unsubscribed and bounced ones.")
@click.pass_obj
def subscribers_list(obj: Context, show_all: bool) -> None:
    """List subscribers, one a line: address, status, language, frequency, time, filters."""
    try:
        records = obj.store().subscriber_records(None if show_all else "active")
    except NewsdeskError as error:
        raise _fail(error) from None
    for record in records:
        sub = record.subscriber
        wants = " ".join(
            f"{label}={','.join(values)}"
            for label, values in (
                ("regions", sub.regions),
                ("countries", sub.countries),
                ("topics", sub.topics),
            )
            if values
        )
        failures = f" failures={record.permanent_failures}" if record.permanent_failures else ""
        click.echo(
            f"{sub.email}\t{record.status}\t{sub.language}\t{sub.frequency}\t{sub.time} "
            f"{sub.timezone}\t{sub.name}\t{wants or 'everything'}{failures}"
        )
    click.echo(f"{len(records)} subscribers", err=True)


@subscribers.command("remove")
@click.argument("email")
@click.pass_obj
def subscribers_remove(obj: Context, email: str) -> None:
    """Delete a subscriber (their delivery history stays in the ledger)."""
    try:
        config = obj.config
        removed = obj.store().remove_subscriber(email.strip())
    except NewsdeskError as error:
        raise _fail(error) from None
    if not removed:
        raise click.ClickException(f"no subscriber {email!r}; see `newsdesk subscribers list`")
    click.echo(f"removed {email.strip().lower()}")
    if any(s.email.lower() == email.strip().lower() for s in config.subscribers):
        click.echo(
            f"note: {email} is in {config.source_name} [[subscribers]] and comes back on the "
            "next run; remove it there too",
            err=True,
        )


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.pass_obj
def subscribers_import(obj: Context, csv_file: Path) -> None:
    """Add or update subscribers from a CSV file (header: email,name,regions,...).

    A bad row is reported with its line number and skipped; the others go in. An import
    never resubscribes someone who unsubscribed.
    """
    from newsdesk.subscribers import read_csv

    try:
        custom_regions = [region.name for region in obj.config.regions]
    except NewsdeskError as error:
        raise _fail(error) from None
    parsed = read_csv(csv_file, custom_regions)
    counts = {"added": 0, "updated": 0, "unchanged": 0}
    try:
        store = obj.store()
        now = obj.now()
        for subscriber, status in parsed.rows:
            existing = store.subscriber_record(subscriber.email)
            result = store.upsert_subscriber(
                subscriber, "import", now, status=status if existing is None else None
            )
            counts[result] += 1
    except NewsdeskError as error:
        raise _fail(error) from None
    for message in parsed.errors:
        click.echo(message, err=True)
    click.echo(
        f"import: {counts['added']} added, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {len(parsed.errors)} failed"
    )
    if parsed.errors:
        sys.exit(1)


@subscribers.command("export")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def subscribers_export(obj: Context, csv_file: Path) -> None:
    """Write every subscriber (with their status) to a CSV file that `import` reads back."""
    from newsdesk.publish import write_if_changed
    from newsdesk.subscribers import csv_text

    try:
        records = obj.store().subscriber_records(None)
    except NewsdeskError as error:
        raise _fail(error) from None
    text = csv_text((r.subscriber, r.status) for r in records)
    write_if_changed(csv_file, text.encode("utf-8"))
    click.echo(f"exported {len(records)} subscribers to {csv_file}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.pass_obj
def serve(obj: Context, host: str, port: int) -> None:
    """Serve the feeds folder (ETag, Last-Modified, 304, gzip) and the unsubscribe page."""
    from newsdesk import server, unsubscribe

    try:
        config = obj.config
    except NewsdeskError as error:
        raise _fail(error) from None
    click.echo(f"serving {config.feeds_dir} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    server.serve(config, host, port, extra_routes=unsubscribe.routes(config))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Show the daemon, each job's next and last run, and counts; read-only, safe while it runs."""
    from newsdesk import status as status_module

    try:
        config = obj.config
        url = config.database_url()
        database = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
        if database is not None and not database.exists():
            raise NewsdeskError(
                f"no database at {database}; start the daemon or run `newsdesk ingest` first"
            )
        store = obj.store()
        try:
            report = status_module.collect(config, store, obj.now())
        finally:
            store.close()
    except NewsdeskError as error:
        raise _fail(error) from None
    if as_json:
        click.echo(json.dumps(status_module.to_json(report), ensure_ascii=False, indent=2))
    else:
        click.echo(status_module.render_text(report))


def main(args: list[str] | None = None, prog_name: str | None = None) -> None:
    """Console entry point."""
    cli.main(args=args, prog_name=prog_name or "newsdesk")
