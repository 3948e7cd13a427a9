"""Errors newsdesk raises on purpose; anything else is a bug.

    NewsdeskError            base: the CLI prints `Error: <message>` and exits 1
    ├── ConfigError          newsdesk.toml is missing, malformed, or has a bad key or value
    ├── InputError           one input (file, feed, page, JSON row) cannot become an article;
    │                        the batch records it and goes on
    ├── StoreError           the database cannot be opened or migrated
    ├── DeliveryError        an email could not be handed to SMTP or written to the outbox
    └── DaemonError          the daemon cannot start: another one holds the database's lock

Every message names what failed (a file, a config key, a source) and what to do about it.
"""


class NewsdeskError(Exception):
    """Base of every error newsdesk raises deliberately."""


class ConfigError(NewsdeskError):
    """The configuration file is missing, malformed, or holds a bad value."""


class InputError(NewsdeskError):
    """One input cannot be turned into an article; the rest of the batch goes on."""

    def __init__(self, origin: str, reason: str) -> None:
        super().__init__(f"{origin}: {reason}")
        self.origin = origin
        self.reason = reason


class StoreError(NewsdeskError):
    """The database cannot be opened, created or migrated."""


class DeliveryError(NewsdeskError):
    """A digest could not be delivered."""


class DaemonError(NewsdeskError):
    """The scheduler daemon cannot run (another daemon holds the database's lock)."""
