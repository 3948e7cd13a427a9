"""Subscriber records: validation of what people type, and the CSV import/export format.

Pure: nothing here touches the database; the CLI and the pipeline hand results to the store.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from newsdesk.models import Subscriber

LANGUAGES = ("en", "fr")
FREQUENCIES = ("daily", "weekly")
STATUSES = ("active", "unsubscribed", "bounced")
CSV_COLUMNS = (
    "email",
    "name",
    "regions",
    "countries",
    "topics",
    "language",
    "frequency",
    "time",
    "timezone",
    "status",
)
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_TOPIC_RE = re.compile(r"^medtop:\d{8}$")
_LIST_SPLIT = re.compile(r"[;,]")


class SubscriberInvalid(ValueError):
    """One field of one subscriber is wrong; the message says which and what to do."""


def address_problem(address: str) -> str:
    """Why `address` is not a usable email address, or "" when it is (syntax only, no DNS)."""
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        return str(error)
    return ""


def normalize_address(address: str) -> str:
    """The canonical form used as the subscriber's key: validated, lower-cased."""
    try:
        # SMTPUTF8 addresses are refused: not every relay on the way accepts them
        valid = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise SubscriberInvalid(f"email {address!r}: {error}") from None
    return valid.normalized.lower()


def split_list(value: str) -> tuple[str, ...]:
    """`"Europe; Eastern Asia"` -> ("Europe", "Eastern Asia"): ; or , separate items."""
    return tuple(item.strip() for item in _LIST_SPLIT.split(value) if item.strip())


@lru_cache(maxsize=1)
def _known_places() -> tuple[frozenset[str], frozenset[str]]:
    from newsdesk.tagging.geography import countries

    table = countries().values()
    regions = {c.region for c in table} | {c.region_code for c in table}
    regions |= {c.subregion for c in table} | {c.subregion_code for c in table}
    return frozenset(r for r in regions if r), frozenset(c.iso2 for c in table)


def make_subscriber(
    email: str,
    *,
    name: str = "",
    regions: Iterable[str] = (),
    countries: Iterable[str] = (),
    topics: Iterable[str] = (),
    language: str = "en",
    frequency: str = "daily",
    time: str = "07:00",
    timezone: str = "UTC",
    custom_regions: Iterable[str] = (),
) -> Subscriber:
    """A checked Subscriber, or SubscriberInvalid naming the first bad field.

    `custom_regions` are the names of the config's [[regions]], valid besides the M49 ones.
    """
    known_regions, known_countries = _known_places()
    allowed = known_regions | set(custom_regions)
    region_list = tuple(regions)
    for region in region_list:
        if region not in allowed:
            raise SubscriberInvalid(
                f"regions: unknown region {region!r}; use a UN M49 region or sub-region name "
                "such as Europe or Eastern Asia, or a [[regions]] name from the config"
            )
    country_list = tuple(c.strip().upper() for c in countries)
    for country in country_list:
        if country not in known_countries:
            raise SubscriberInvalid(
                f"countries: {country!r} is not an ISO 3166-1 alpha-2 code such as FR"
            )
    topic_list = tuple(topics)
    for topic in topic_list:
        if not _TOPIC_RE.match(topic):
            raise SubscriberInvalid(
                f"topics: {topic!r} is not an IPTC Media Topic code such as medtop:15000000"
            )
    if language not in LANGUAGES:
        raise SubscriberInvalid(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    if frequency not in FREQUENCIES:
        raise SubscriberInvalid(f"frequency must be daily or weekly, got {frequency!r}")
    if not _TIME_RE.match(time):
        raise SubscriberInvalid(f"time must be HH:MM such as 07:00, got {time!r}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SubscriberInvalid(
            f"timezone: unknown time zone {timezone!r}; use an IANA name like Europe/Paris"
        ) from None
    return Subscriber(
        email=normalize_address(email),
        name=" ".join(name.split()),
        regions=region_list,
        countries=country_list,
        topics=topic_list,
        language=language,
        frequency=frequency,
        timezone=timezone,
        time=time,
    )


@dataclass
class CsvImport:
    """What a CSV file held: good rows (with their status) and one message per bad row."""

    rows: list[tuple[Subscriber, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_csv(path: Path, custom_regions: Iterable[str] = ()) -> CsvImport:
    """Parse a subscriber CSV (header row required; only `email` is mandatory)."""
    result = CsvImport()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        result.errors.append(f"{path.name}: cannot read it as UTF-8 text: {error}")
        return result
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    if "email" not in header:
        result.errors.append(
            f"{path.name} line 1: no email column; the header must name columns among "
            f"{', '.join(CSV_COLUMNS)}"
        )
        return result
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    if unknown:
        result.errors.append(
            f"{path.name} line 1: unknown column {unknown[0]!r}; known: {', '.join(CSV_COLUMNS)}"
        )
        return result
    reader.fieldnames = header
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num  # a quoted field may span lines
        values = {key: (value or "").strip() for key, value in row.items() if key is not None}
        if not any(values.values()):
            continue
        try:
            status = values.get("status") or "active"
            if status not in STATUSES:
                raise SubscriberInvalid(f"status must be one of {', '.join(STATUSES)}")
            subscriber = make_subscriber(
                values.get("email", ""),
                name=values.get("name", ""),
                regions=split_list(values.get("regions", "")),
                countries=split_list(values.get("countries", "")),
                topics=split_list(values.get("topics", "")),
                language=values.get("language") or "en",
                frequency=values.get("frequency") or "daily",
                time=values.get("time") or "07:00",
                timezone=values.get("timezone") or "UTC",
                custom_regions=custom_regions,
            )
        except SubscriberInvalid as error:
            result.errors.append(f"{path.name} line {start}: {error}; row skipped")
            continue
        result.rows.append((subscriber, status))
    return result


def csv_text(rows: Iterable[tuple[Subscriber, str]]) -> str:
    """The CSV that `read_csv` reads back: lists joined with "; "."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for sub, status in rows:
        writer.writerow(
            [
                sub.email,
                sub.name,
                "; ".join(sub.regions),
                "; ".join(sub.countries),
                "; ".join(sub.topics),
                sub.language,
                sub.frequency,
                sub.time,
                sub.timezone,
                status,
            ]
        )
    return out.getvalue()
