"""Optional DKIM signing (dkimpy) of finished digests, key read from the file named in config."""

from __future__ import annotations

from dataclasses import dataclass

import dkim

from newsdesk.config import Config
from newsdesk.digest import sender_domain
from newsdesk.errors import ConfigError

# Both List-Unsubscribe headers are signed: RFC 8058 section 4 requires it for one-click.
SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)


@dataclass(frozen=True)
class DkimSigner:
    selector: str
    domain: str
    private_key: bytes  # PEM

    def sign(self, raw: bytes) -> bytes:
        """The message with a DKIM-Signature header in front."""
        signature = dkim.sign(
            raw,
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
        )
        return bytes(signature) + raw


def signer_from_config(config: Config) -> DkimSigner | None:
    """A signer when [digest] dkim_key_file is set; ConfigError if the key is unusable."""
    digest = config.digest
    if not digest.dkim_key_file:
        return None
    path = config.path(digest.dkim_key_file)
    where = f"{config.source_name}: [digest] dkim_key_file"
    try:
        key = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{where}: cannot read {path}: {error.strerror}") from None
    signer = DkimSigner(
        digest.dkim_selector, digest.dkim_domain or sender_domain(digest.sender), key
    )
    try:
        signer.sign(b"From: check@example.org\r\nSubject: key check\r\n\r\nbody\r\n")
    except (dkim.DKIMException, ValueError) as error:
        raise ConfigError(
            f"{where}: {path.name} is not a usable PEM RSA private key: {error}"
        ) from None
    return signer
