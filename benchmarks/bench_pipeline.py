"""Pipeline figures on a synthetic corpus: ingest+tag rate, feed build, digest render, memory.

    python benchmarks/bench_pipeline.py [--articles N]

Generates N articles (English, French, German) with known countries and topics into a temp
workspace, runs the real pipeline on real SQLite, and prints the figures. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsdesk import pipeline  # noqa: E402
from newsdesk.config import load_config  # noqa: E402
from newsdesk.digest import render_digest, settings_from_config  # noqa: E402
from newsdesk.models import Subscriber  # noqa: E402
from newsdesk.store import ArticleFilter, Store  # noqa: E402

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PLACES = {
    "en": [("Japan", "Tokyo"), ("Brazil", "Brasília"), ("Kenya", "Nairobi"), ("Germany", "Berlin")],
    "fr": [
        ("Japon", "Tokyo"),
        ("Brésil", "Brasília"),
        ("Kenya", "Nairobi"),
        ("Allemagne", "Berlin"),
    ],
    "de": [
        ("Japan", "Tokio"),
        ("Brasilien", "Brasília"),
        ("Kenia", "Nairobi"),
        ("Frankreich", "Paris"),
    ],
}
SENTENCES = {
    "en": [
        "The government in {capital} announced new measures on {topic} after a long debate.",
        "Officials in {country} said the election campaign would focus on the economy.",
        "The central bank kept interest rates unchanged as inflation eased in {country}.",
        "The national football team won the match with a late goal in {capital}.",
        "Researchers in {country} published a study on vaccines and public health.",
    ],
    "fr": [
        "Le gouvernement à {capital} a annoncé de nouvelles mesures sur {topic} après un long débat.",
        "Les autorités du {country} ont indiqué que la campagne électorale porterait sur l'économie.",
        "La banque centrale a maintenu ses taux d'intérêt alors que l'inflation ralentit.",
        "L'équipe nationale de football a gagné le match grâce à un but tardif à {capital}.",
        "Des chercheurs ont publié une étude sur les vaccins et la santé publique en {country}.",
    ],
    "de": [
        "Die Regierung in {capital} kündigte nach langer Debatte neue Maßnahmen zu {topic} an.",
        "Die Behörden in {country} sagten, der Wahlkampf werde sich auf die Wirtschaft konzentrieren.",
        "Die Zentralbank ließ die Zinsen unverändert, da die Inflation in {country} nachließ.",
        "Die Nationalmannschaft gewann das Fußballspiel mit einem späten Tor in {capital}.",
    ],
}
TOPICS = {"en": "energy", "fr": "l'énergie", "de": "Energie"}


def make_corpus(folder: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    lines = []
    for index in range(count):
        language = rng.choice(["en", "en", "fr", "fr", "de"])
        country, capital = rng.choice(PLACES[language])
        sentences = [
            rng.choice(SENTENCES[language]).format(
                country=country, capital=capital, topic=TOPICS[language]
            )
            for _ in range(rng.randint(12, 30))
        ]
        paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
        lines.append(
            json.dumps(
                {
                    "id": f"bench-{index}",
                    "title": sentences[0][:90],
                    "body": "\n\n".join(paragraphs),
                    "language": language,
                    "published": f"2026-11-{1 + index % 22:02d}T{index % 24:02d}:00:00Z",
                    "source": "bench",
                },
                ensure_ascii=False,
            )
        )
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="newsdesk-bench-"))
    try:
        (workspace / "seeds").mkdir()
        shutil.copytree(REPO / "templates", workspace / "templates")
        (workspace / "newsdesk.toml").write_text(
            '[feeds]\nmin_country_articles = 1\nbase_url = "https://bench.example/"\n',
            encoding="utf-8",
        )
        make_corpus(workspace / "seeds", args.articles)
        config = load_config(workspace / "newsdesk.toml")
        store = Store.open(config.database_url())
        templates = pipeline.templates_for(config)

        started = time.perf_counter()
        tagger = pipeline.make_tagger(config)
        tagger_seconds = time.perf_counter() - started

        started = time.perf_counter()
        report = pipeline.ingest(config, store, tagger, [config.seeds_dir], NOW)
        ingest_seconds = time.perf_counter() - started

        sample = store.articles(ArticleFilter(), limit=200)
        timings = []
        for article in sample:
            begin = time.perf_counter()
            tagger.analyze(article.title, article.body_text, article.language)
            timings.append(time.perf_counter() - begin)

        started = time.perf_counter()
        built = pipeline.build(config, store, templates, NOW)
        build_seconds = time.perf_counter() - started
        started = time.perf_counter()
        rebuilt = pipeline.build(config, store, templates, NOW)
        rebuild_seconds = time.perf_counter() - started

        subscriber = Subscriber(email="bench@example.org", name="Bench", language="fr")
        articles = store.articles(ArticleFilter(), limit=30)
        settings = settings_from_config(config, b"bench-secret-0123456789")
        started = time.perf_counter()
        renders = 200
        for _ in range(renders):
            render_digest(articles, subscriber, templates, settings, NOW)
        digest_seconds = (time.perf_counter() - started) / renders

        mean_chars = statistics.mean(len(a.body_text) for a in sample)
        print(f"articles                  {report.added} added ({len(report.errors)} failed)")
        print(f"gazetteer+lexicon load    {tagger_seconds * 1000:.0f} ms")
        print(f"ingest+tag                {report.added / ingest_seconds:.0f} articles/s")
        print(
            f"tagging only              {statistics.median(timings) * 1000:.3f} ms median "
            f"per article ({mean_chars:.0f} chars)"
        )
        print(
            f"feed build                {build_seconds:.2f} s for {built.feeds} feeds x 3 formats"
        )
        print(
            f"rebuild, nothing new      {rebuild_seconds:.2f} s ({rebuilt.files_written} written)"
        )
        print(f"digest render             {digest_seconds * 1000:.1f} ms per 30-article digest")
        print(f"peak memory               {peak_memory_mb():.0f} MB")
        store.close()
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
