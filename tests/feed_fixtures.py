"""A small store of hand-made, tagged articles for the feed and server tests.

Articles are saved straight into a real SQLite store (no tagger), so each test knows exactly
which feeds exist. Some articles are hostile on purpose: unsafe HTML, relative links, control
characters, a tag label that looks like a path, a date in the future.
"""

from __future__ import annotations

import hashlib
import shutil
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsdesk.models import Article, Tag
from newsdesk.store import Store

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE_URL = "https://news.example.org/feeds/"

# A real corner of the IPTC Media Topics tree: two top-level topics and two children.
PARENTS = {
    "medtop:16000000": "",
    "medtop:20000053": "medtop:16000000",
    "medtop:07000000": "",
    "medtop:20000446": "medtop:07000000",
}
TOPIC_LABELS = {
    "medtop:16000000": "conflict, war and peace",
    "medtop:20000053": "act of terror",
    "medtop:07000000": "health",
    "medtop:20000446": "health treatment",
}
PLACES = {
    "KP": ("North Korea", "030", "Eastern Asia", "142", "Asia"),
    "KR": ("South Korea", "030", "Eastern Asia", "142", "Asia"),
    "FR": ("France", "155", "Western Europe", "150", "Europe"),
    "BR": ("Brazil", "005", "South America", "019", "Americas"),
}


def place_tags(*countries: str) -> tuple[Tag, ...]:
    tags: dict[tuple[str, str], Tag] = {}
    for code in countries:
        name, sub_code, sub, region_code, region = PLACES[code]
        tags[("country", code)] = Tag("country", code, name, 2.0, (name,))
        tags[("subregion", sub_code)] = Tag("subregion", sub_code, sub, 1.5)
        tags[("region", region_code)] = Tag("region", region_code, region, 1.0)
    return tuple(tags.values())


def topic_tags(*codes: str) -> tuple[Tag, ...]:
    return tuple(Tag("topic", code, TOPIC_LABELS[code], 3.0, ("word",)) for code in codes)


def article(
    number: int,
    *,
    hours_ago: float,
    countries: tuple[str, ...] = (),
    topics: tuple[str, ...] = (),
    language: str = "en",
    title: str = "",
    body_html: str = "",
    url: str = "",
    extra_tags: tuple[Tag, ...] = (),
) -> Article:
    title = title or f"Story number {number}"
    body = body_html or f"<p>Paragraph of story {number}.</p>"
    return Article(
        id=f"a{number:04d}",
        title=title,
        summary=f"Summary of story {number} & more.",
        body_text=f"Paragraph of story {number}.",
        body_html=body,
        language=language,
        published=NOW - timedelta(hours=hours_ago),
        url=url or f"https://example.com/news/{number}",
        source="Example Wire",
        fingerprint=hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()[:32],
        tags=(*place_tags(*countries), *topic_tags(*topics), *extra_tags),
    )


def sample_articles() -> list[Article]:
    """Twelve articles: English and French, four countries, two topic levels, hostile bits."""
    return [
        article(
            1,
            hours_ago=1,
            countries=("KP", "KR"),
            topics=("medtop:16000000", "medtop:20000053"),
            title="Talks <resume> & stall\x0b at the border",
            body_html=(
                '<p>Read <a href="/analysis/2">the analysis</a> and '
                '<a href="#map">the map</a>.</p>'
                "<script>alert(1)</script><iframe src='https://evil.example/'></iframe>"
                '<p onclick="steal()">Clicked.</p>'
                '<a href="javascript:alert(2)">bad</a>'
            ),
        ),
        article(2, hours_ago=2, countries=("KP",), topics=("medtop:16000000",)),
        article(3, hours_ago=3, countries=("KR",), topics=("medtop:07000000", "medtop:20000446")),
        article(
            4,
            hours_ago=4,
            countries=("FR",),
            topics=("medtop:07000000",),
            language="fr",
            title="La santé « publique » en débat",
            url="tag:newsdesk,2026:file:seeds/fr.txt",
            body_html='<p>Voir <a href="../dossier.html">le dossier</a>.</p>',
        ),
        article(5, hours_ago=5, countries=("FR",), topics=("medtop:07000000",), language="fr"),
        article(
            6, hours_ago=6, countries=("KP", "FR"), topics=("medtop:20000053", "medtop:16000000")
        ),
        article(7, hours_ago=7, countries=("BR",), topics=("medtop:07000000",)),  # BR: 1 article
        article(8, hours_ago=8, countries=("KR",), topics=("medtop:07000000",)),
        # Same published time as #8: the id breaks the tie.
        article(9, hours_ago=8, countries=("KR",), topics=("medtop:20000446", "medtop:07000000")),
        article(
            10,
            hours_ago=9,
            extra_tags=(Tag("subregion", "../../etc", "../../etc/passwd", 1.0),),
        ),
        article(11, hours_ago=-5, countries=("KP",), topics=("medtop:16000000",)),  # future
        article(12, hours_ago=30, countries=("KR",), topics=("medtop:16000000",)),
    ]


CONFIG = """\
[feeds]
base_url = "{base_url}"
title = "Desk"
description = "News by region and topic"
item_limit = {item_limit}
min_country_articles = 2
{hub_line}

[[custom_feeds]]
slug = "korea-health"
title = "Korea and health"
countries = ["KP", "KR"]
topics = ["medtop:07000000"]

[[custom_feeds]]
slug = "francophone-europe"
title = "Europe in French"
description = "French-language news from Europe"
regions = ["Europe"]
languages = ["fr"]
"""


def make_workspace(
    root: Path, *, item_limit: int = 5, hub: str = "", base_url: str = BASE_URL, extra: str = ""
) -> Path:
    """A folder with templates, a config and a store holding `sample_articles()`."""
    shutil.copytree(REPO / "templates", root / "templates", dirs_exist_ok=True)
    hub_line = f'websub_hub = "{hub}"' if hub else ""
    (root / "newsdesk.toml").write_text(
        textwrap.dedent(CONFIG.format(base_url=base_url, item_limit=item_limit, hub_line=hub_line))
        + extra,
        encoding="utf-8",
    )
    store = Store.open(f"sqlite:///{root / 'newsdesk.db'}")
    store.save_articles(sample_articles(), NOW - timedelta(hours=40))
    store.close()
    return root
