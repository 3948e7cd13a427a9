"""newsdesk.toml -> a frozen Config. Unknown keys, wrong types and bad values are errors.

Every key, its type and its default is declared once, as a dataclass field; the README's config
section and the sample newsdesk.toml document the same keys (a test keeps them in step).
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsdesk.errors import ConfigError
from newsdesk.models import CustomRegion, CustomTopic, Subscriber
from newsdesk.subscribers import address_problem
from newsdesk.tagging.geography import countries

DEFAULT_CONFIG_NAME = "newsdesk.toml"
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class PathsConfig:
    seeds: str = "seeds"
    feeds: str = "feeds"
    outbox: str = "outbox"
    templates: str = "templates"


@dataclass(frozen=True)
class StoreConfig:
    path: str = "newsdesk.db"
    url_env: str = "NEWSDESK_DATABASE_URL"


@dataclass(frozen=True)
class IngestConfig:
    max_file_bytes: int = 5_000_000
    languages: tuple[str, ...] = ("en", "fr", "de", "es", "it", "pt")
    default_language: str = "en"


@dataclass(frozen=True)
class FeedsConfig:
    base_url: str = "http://localhost:8080/"
    title: str = "newsdesk"
    description: str = "News by region and topic"
    item_limit: int = 50
    min_country_articles: int = 2
    websub_hub: str = ""  # a WebSub hub URL: feeds advertise it and it is pinged on change
    cache_max_age: int = 300  # seconds readers and caches may reuse a feed (`newsdesk serve`)


@dataclass(frozen=True)
class CustomFeed:
    """A feed declared in [[custom_feeds]]: places OR together; topics and languages narrow."""

    slug: str
    title: str
    description: str = ""
    countries: tuple[str, ...] = ()
    subregions: tuple[str, ...] = ()  # M49 sub-region names or codes
    regions: tuple[str, ...] = ()  # M49 region names or codes
    topics: tuple[str, ...] = ()  # IPTC Media Topic codes such as "medtop:16000000"
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaggingConfig:
    min_city_population: int = 50_000
    cache_dir: str = ""


@dataclass(frozen=True)
class DigestConfig:
    sender: str = "newsdesk <digest@localhost>"
    max_articles: int = 40
    max_html_bytes: int = 100_000  # Gmail clips larger messages, hiding the unsubscribe link
    unsubscribe_url: str = "http://localhost:8080/unsubscribe"
    unsubscribe_mailto: str = ""  # "" = unsubscribe@ the sender's domain
    list_id: str = ""  # "" = digest.<the sender's domain>
    secret_env: str = "NEWSDESK_UNSUBSCRIBE_SECRET"
    max_permanent_failures: int = 3
    dkim_key_file: str = ""  # "" = no DKIM signature
    dkim_selector: str = "newsdesk"
    dkim_domain: str = ""  # "" = the sender's domain


@dataclass(frozen=True)
class SmtpConfig:
    host: str = ""
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = "NEWSDESK_SMTP_PASSWORD"
    timeout_seconds: float = 30.0
    retries: int = 3
    retry_backoff_seconds: float = 2.0
    ca_file: str = ""  # PEM bundle trusted besides the system store (a private or self-signed CA)


@dataclass(frozen=True)
class ScheduleConfig:
    ingest_every_seconds: float = 1800.0
    digest_days: str = "mon-sun"
    weekly_day: str = "mon"
    timezone: str = "UTC"
    misfire_grace_seconds: float = 600.0
    digest_grace_hours: float = 6.0
    stop_timeout_seconds: float = 60.0
    lock_stale_seconds: float = 60.0


@dataclass(frozen=True)
class RetentionConfig:
    days: int = 90
    run_at: str = "03:30"


@dataclass(frozen=True)
class FetchConfig:
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 20.0
    total_timeout_seconds: float = 60.0
    max_body_bytes: int = 5_000_000
    max_redirects: int = 5
    concurrency: int = 16
    per_host: int = 2
    max_backoff_hours: float = 24.0


@dataclass(frozen=True)
class SourceConfig:
    """One `[[sources]]` entry: a feed URL, a page URL or a local folder."""

    name: str
    url: str = ""
    path: str = ""
    kind: str = ""  # feed | page | folder; "" = detect (a path is a folder, a URL is sniffed)
    language: str = ""
    countries: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    fetch_every_minutes: float = 0.0  # 0 = [schedule] ingest_every_seconds
    full_text: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class Config:
    root: Path  # the folder the config file lives in; relative paths start here
    source_name: str  # how errors name the config file
    paths: PathsConfig = field(default_factory=PathsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    tagging: TaggingConfig = field(default_factory=TaggingConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    smtp: SmtpConfig | None = None
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    subscribers: tuple[Subscriber, ...] = ()
    regions: tuple[CustomRegion, ...] = ()
    topics: tuple[CustomTopic, ...] = ()
    fetch: FetchConfig = field(default_factory=FetchConfig)
    sources: tuple[SourceConfig, ...] = ()
    custom_feeds: tuple[CustomFeed, ...] = ()

    def path(self, relative: str) -> Path:
        """A config path made absolute against the config file's folder."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    @property
    def seeds_dir(self) -> Path:
        return self.path(self.paths.seeds)

    @property
    def feeds_dir(self) -> Path:
        return self.path(self.paths.feeds)

    @property
    def outbox_dir(self) -> Path:
        return self.path(self.paths.outbox)

    @property
    def cache_dir(self) -> Path | None:
        return self.path(self.tagging.cache_dir) if self.tagging.cache_dir else None

    @property
    def templates_dir(self) -> Path:
        return self.path(self.paths.templates)

    def database_url(self) -> str:
        """The SQLAlchemy URL: the environment variable named by [store] url_env, else SQLite."""
        from_env = os.environ.get(self.store.url_env, "").strip() if self.store.url_env else ""
        return from_env or f"sqlite:///{self.path(self.store.path)}"


_SECTIONS: dict[str, type] = {
    "paths": PathsConfig,
    "store": StoreConfig,
    "ingest": IngestConfig,
    "feeds": FeedsConfig,
    "tagging": TaggingConfig,
    "digest": DigestConfig,
    "smtp": SmtpConfig,
    "schedule": ScheduleConfig,
    "fetch": FetchConfig,
    "retention": RetentionConfig,
}

# Sections that are arrays of tables ([[name]]), each entry one record.
_ARRAYS: dict[str, type] = {
    "subscribers": Subscriber,
    "sources": SourceConfig,
    "regions": CustomRegion,
    "topics": CustomTopic,
    "custom_feeds": CustomFeed,
}

T = TypeVar("T")


def load_config(path: Path) -> Config:
    """Read and validate a newsdesk.toml; raise ConfigError naming the file and key."""
    name = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{name}: file not found at {path}; create it (see the sample newsdesk.toml) "
            "or pass --config"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    return parse_config(raw, root=path.resolve().parent, source_name=name)


def parse_config(raw: dict[str, Any], root: Path, source_name: str = DEFAULT_CONFIG_NAME) -> Config:
    """Validate an already-parsed TOML document."""
    unknown = sorted(set(raw) - set(_SECTIONS) - set(_ARRAYS))
    if unknown:
        known = ", ".join(sorted([*_SECTIONS, *_ARRAYS]))
        raise ConfigError(f"{source_name}: unknown section [{unknown[0]}]; known sections: {known}")
    sections: dict[str, Any] = {}
    for key, cls in _SECTIONS.items():
        if key in raw:
            table = raw[key]
            if not isinstance(table, dict):
                raise ConfigError(f"{source_name}: [{key}] must be a table")
            sections[key] = _build(cls, table, f"{source_name}: [{key}]")
    for key, cls in _ARRAYS.items():
        entries = raw.get(key, [])
        if not isinstance(entries, list):
            raise ConfigError(f"{source_name}: {key} must be an array of tables [[{key}]]")
        sections[key] = tuple(
            _build(cls, entry, f"{source_name}: [[{key}]] #{index}")
            if isinstance(entry, dict)
            else _fail(f"{source_name}: [[{key}]] #{index} must be a table")
            for index, entry in enumerate(entries, start=1)
        )
    config = Config(root=root, source_name=source_name, **sections)
    _check_values(config)
    from newsdesk.catalog import check_custom_feeds  # the feed rules live with the feeds

    check_custom_feeds(
        config.custom_feeds, f"{source_name}: [[custom_feeds]]", [r.name for r in config.regions]
    )
    return config


def _fail(message: str) -> Any:
    raise ConfigError(message)


def _build(cls: type[T], table: dict[str, Any], where: str) -> T:
    """Construct a section dataclass from a TOML table, checking keys and types."""
    declared = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in table:
        if key not in declared:
            raise ConfigError(f"{where} unknown key {key!r}; known keys: {', '.join(declared)}")
    values: dict[str, Any] = {}
    for key, spec in declared.items():
        if key not in table:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise ConfigError(f"{where} {key}: required, add it")
            continue
        values[key] = _coerce(table[key], hints[key], f"{where} {key}")
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin is dict:
        valid = isinstance(value, dict) and all(
            isinstance(v, list) and all(isinstance(item, str) for item in v) for v in value.values()
        )
        if not valid:
            raise ConfigError(f'{where} must be a table of string lists, like {{ en = ["a"] }}')
        return {str(k): tuple(v) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings, got {value!r}")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if hint in expected and (
        not isinstance(value, hint) or (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where} must be {expected[hint]}, got {value!r}")
    return value


def _check_values(config: Config) -> None:
    """Checks that go beyond types: ranges, enumerations, time zones."""
    where = config.source_name
    if config.ingest.max_file_bytes <= 0:
        raise ConfigError(f"{where}: [ingest] max_file_bytes must be positive")
    if config.feeds.item_limit <= 0:
        raise ConfigError(f"{where}: [feeds] item_limit must be positive")
    if not config.feeds.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: [feeds] base_url must be an absolute http(s) URL")
    if not config.feeds.base_url.endswith("/"):
        raise ConfigError(
            f"{where}: [feeds] base_url must end with / (it is the feeds folder), "
            f"got {config.feeds.base_url!r}"
        )
    if config.feeds.websub_hub and not config.feeds.websub_hub.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: [feeds] websub_hub must be an absolute http(s) URL or empty")
    if config.feeds.cache_max_age < 0:
        raise ConfigError(f"{where}: [feeds] cache_max_age must be zero or more seconds")
    _check_schedule(config.schedule, config.retention, where)
    _check_days(config.schedule.digest_days, f"{where}: [schedule] digest_days")
    _check_timezone(config.schedule.timezone, f"{where}: [schedule] timezone")
    if config.smtp is not None:
        if not config.smtp.host:
            raise ConfigError(f"{where}: [smtp] host: required when [smtp] is present")
        if config.smtp.security not in ("starttls", "ssl", "none"):
            raise ConfigError(f"{where}: [smtp] security must be starttls, ssl or none")
        loopback = config.smtp.host in ("localhost", "127.0.0.1", "::1")
        if config.smtp.security == "none" and config.smtp.username and not loopback:
            # A login without TLS would send the password in clear over the network.
            raise ConfigError(
                f'{where}: [smtp] security = "none" with a username would send the password '
                "unencrypted; use starttls or ssl"
            )
        if config.smtp.retries < 0 or config.smtp.retry_backoff_seconds < 0:
            raise ConfigError(f"{where}: [smtp] retries and retry_backoff_seconds must be >= 0")
    _check_digest(config.digest, f"{where}: [digest]")
    _check_custom(config)
    _check_fetch(config.fetch, f"{where}: [fetch]")
    _check_sources(config.sources, where)
    for index, sub in enumerate(config.subscribers, start=1):
        label = f"{where}: [[subscribers]] #{index}"
        if sub.frequency not in ("daily", "weekly"):
            raise ConfigError(f"{label} frequency must be daily or weekly, got {sub.frequency!r}")
        _check_timezone(sub.timezone, f"{label} timezone")
        if not _TIME_RE.match(sub.time):
            raise ConfigError(f"{label} time must be HH:MM, got {sub.time!r}")
        problem = address_problem(sub.email)
        if problem:
            raise ConfigError(f"{label} email {sub.email!r}: {problem}")


def _check_schedule(schedule: ScheduleConfig, retention: RetentionConfig, where: str) -> None:
    positive = (
        "ingest_every_seconds",
        "misfire_grace_seconds",
        "stop_timeout_seconds",
        "lock_stale_seconds",
    )
    for key in positive:
        if getattr(schedule, key) <= 0:
            raise ConfigError(f"{where}: [schedule] {key} must be positive")
    if schedule.digest_grace_hours < 0:
        raise ConfigError(f"{where}: [schedule] digest_grace_hours must be 0 or more")
    if schedule.weekly_day.lower() not in _DAYS:
        raise ConfigError(
            f"{where}: [schedule] weekly_day must be a day name like mon, "
            f"got {schedule.weekly_day!r}"
        )
    if retention.days < 0:
        raise ConfigError(f"{where}: [retention] days must be 0 (keep forever) or more")
    if not _TIME_RE.match(retention.run_at):
        raise ConfigError(f"{where}: [retention] run_at must be HH:MM, got {retention.run_at!r}")


def _check_digest(digest: DigestConfig, where: str) -> None:
    if digest.max_articles <= 0 or digest.max_html_bytes < 20_000:
        raise ConfigError(f"{where} max_articles must be positive and max_html_bytes >= 20000")
    if digest.max_permanent_failures <= 0:
        raise ConfigError(f"{where} max_permanent_failures must be positive")
    url = urlsplit(digest.unsubscribe_url)
    # RFC 8058 one-click needs https; plain http is only tolerated for a server on this machine.
    if (
        not (url.scheme == "https" or (url.scheme == "http" and url.hostname in _LOOPBACK_HOSTS))
        or not url.hostname
    ):
        raise ConfigError(
            f"{where} unsubscribe_url must be an https:// URL (http only for localhost), "
            f"got {digest.unsubscribe_url!r}"
        )
    if digest.unsubscribe_mailto and address_problem(digest.unsubscribe_mailto):
        raise ConfigError(
            f"{where} unsubscribe_mailto must be an address such as unsubscribe@example.org"
        )


def _check_fetch(fetch: FetchConfig, where: str) -> None:
    for spec in fields(fetch):
        value = getattr(fetch, spec.name)
        if value <= 0:
            raise ConfigError(f"{where} {spec.name} must be positive, got {value!r}")


_SOURCE_KINDS = ("", "feed", "page", "folder")
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
_TOPIC_CODE = re.compile(r"^medtop:\d{8}$")


def _check_sources(sources: tuple[SourceConfig, ...], where: str) -> None:
    seen: set[str] = set()
    for index, source in enumerate(sources, start=1):
        label = f"{where}: [[sources]] #{index} ({source.name!r})"
        if not source.name.strip():
            raise ConfigError(f"{where}: [[sources]] #{index} name must not be empty")
        if source.name in seen:
            raise ConfigError(f"{label} name is used twice; give each source its own name")
        seen.add(source.name)
        if bool(source.url) == bool(source.path):
            raise ConfigError(f"{label} needs exactly one of url (a feed or page) or path")
        if source.kind not in _SOURCE_KINDS:
            raise ConfigError(f"{label} kind must be feed, page or folder, got {source.kind!r}")
        if source.url and not source.url.startswith(("http://", "https://")):
            raise ConfigError(f"{label} url must be an absolute http(s) URL, got {source.url!r}")
        if source.url and source.kind == "folder":
            raise ConfigError(f"{label} kind folder needs path, not url")
        if source.path and source.kind in ("feed", "page"):
            raise ConfigError(f"{label} kind {source.kind} needs url, not path")
        if source.fetch_every_minutes < 0:
            raise ConfigError(f"{label} fetch_every_minutes must not be negative")
        for code in source.countries:
            if not _COUNTRY_CODE.match(code) or code not in countries():
                raise ConfigError(f"{label} countries: {code!r} is not an ISO alpha-2 code like FR")
        for code in source.topics:
            if not _TOPIC_CODE.match(code):
                raise ConfigError(
                    f"{label} topics: {code!r} is not an IPTC code like medtop:04000000"
                )


def _check_custom(config: Config) -> None:
    where = config.source_name
    for index, region in enumerate(config.regions, start=1):
        bad = [c for c in region.countries if not re.fullmatch(r"[A-Z]{2}", c)]
        if bad or not region.countries:
            raise ConfigError(
                f"{where}: [[regions]] #{index} countries must be ISO 3166 alpha-2 codes like "
                f'"KP", got {list(region.countries)!r}'
            )
    for index, topic in enumerate(config.topics, start=1):
        if not topic.phrases and not topic.patterns:
            raise ConfigError(f"{where}: [[topics]] #{index} needs phrases or patterns")
        for pattern in topic.patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ConfigError(
                    f"{where}: [[topics]] #{index} patterns: {pattern!r} is not a valid "
                    f"regular expression ({error})"
                ) from None


def _check_days(spec: str, where: str) -> None:
    for part in spec.lower().split(","):
        for day in part.strip().split("-"):
            if day not in _DAYS:
                raise ConfigError(f"{where} must name days like mon-fri or sat,sun, got {spec!r}")


def _check_timezone(name: str, where: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: unknown time zone {name!r}; use an IANA name like Europe/Paris"
        ) from None
