"""The words of the digest in each language it speaks; dates and numbers come from Babel (CLDR)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "articles_one": "article",
        "articles_many": "articles",
        "preheader": "{count} new {articles} for you, {name}",
        "greeting": "Hello {name},",
        "intro": "Here are the stories that match your regions and topics.",
        "read_more": "Read the article:",
        "and_more": "and {count} more in your feeds",
        "elsewhere": "World",
        "other_topics": "Other news",
        "why": "You receive this digest because you subscribed to newsdesk.",
        "unsubscribe": "Unsubscribe",
        "manage": "Your feeds",
        "subject_date": "d MMM y",
        "sent_to": "Sent to {email}.",
        "confirm_title": "Unsubscribe from the digest?",
        "confirm_text": "Press the button to stop the newsdesk digest for {email}.",
        "confirm_button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done_text": "{email} will receive no more digests.",
        "invalid_title": "This unsubscribe link is not valid",
        "invalid_text": "It may have been cut or altered: use the link in a recent digest.",
    },
    "fr": {
        "articles_one": "article",
        "articles_many": "articles",
        "preheader": "{count} {articles} pour vous, {name}",
        "greeting": "Bonjour {name},",
        "intro": "Voici les articles qui correspondent à vos régions et à vos thèmes.",
        "read_more": "Lire l’article\u00a0:",
        "and_more": "et {count} de plus dans vos flux",
        "elsewhere": "Monde",
        "other_topics": "Autres actualités",
        "why": "Vous recevez ce résumé parce que vous êtes abonné à newsdesk.",
        "unsubscribe": "Se désabonner",
        "manage": "Vos flux",
        "subject_date": "d MMM y",
        "sent_to": "Envoyé à {email}.",
        "confirm_title": "Se désabonner du résumé ?",
        "confirm_text": "Appuyez sur le bouton pour ne plus recevoir le résumé newsdesk à {email}.",
        "confirm_button": "Me désabonner",
        "done_title": "Vous êtes désabonné",
        "done_text": "{email} ne recevra plus de résumé.",
        "invalid_title": "Ce lien de désabonnement n’est pas valide",
        "invalid_text": (
            "Il a peut-être été coupé ou modifié : utilisez le lien d’un résumé récent."
        ),
    },
}
DEFAULT_LANGUAGE = "en"


def messages(language: str) -> dict[str, str]:
    """The digest's words in `language`, English for a language it does not speak yet."""
    return MESSAGES.get(language, MESSAGES[DEFAULT_LANGUAGE])
