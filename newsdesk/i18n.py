"""The words of the digest in each language it speaks; dates and numbers come from Babel (CLDR)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "articles_one": "article",
        "articles_many": "articles",
        "preheader": "{count} new {articles} for you, {name}",
        "greeting": "Hello {name},",
        "intro": "Here are the stories that match your regions and topics.",
        "read_more": "Read the article",
        "and_more": "and {count} more in your feeds",
        "elsewhere": "World",
        "other_topics": "Other news",
        "why": "You receive this digest because you subscribed to newsdesk.",
        "unsubscribe": "Unsubscribe",
        "manage": "Your feeds",
    },
    "fr": {
        "articles_one": "article",
        "articles_many": "articles",
        "preheader": "{count} nouveaux {articles} pour vous, {name}",
        "greeting": "Bonjour {name},",
        "intro": "Voici les articles qui correspondent à vos régions et à vos thèmes.",
        "read_more": "Lire l’article",
        "and_more": "et {count} de plus dans vos flux",
        "elsewhere": "Monde",
        "other_topics": "Autres actualités",
        "why": "Vous recevez ce résumé parce que vous êtes abonné à newsdesk.",
        "unsubscribe": "Se désabonner",
        "manage": "Vos flux",
    },
}
DEFAULT_LANGUAGE = "en"


def messages(language: str) -> dict[str, str]:
    """The digest's words in `language`, English for a language it does not speak yet."""
    return MESSAGES.get(language, MESSAGES[DEFAULT_LANGUAGE])
