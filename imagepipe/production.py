"""What PRODUCTION=true refuses as the settings load: a placeholder secret, a database or Redis
reached without a password, a broker reached in clear or anonymously.

It judges what a process was given. What a process must be given depends on its role (a worker
has no database and no SECRET_KEY) and is checked as it starts: imagepipe/needs.py.
"""

from __future__ import annotations

from urllib.parse import urlparse

from .env import env_str, require

# Words of the values people leave in place from an example (this project's own dev key has two).
PLACEHOLDERS = ("change-me", "changeme", "dev-only", "insecure", "example")
SECRET_KEY_LENGTH = 50  # Django's own deploy check (security.W009) asks as much


def check_secret_key(key: str) -> None:
    """A given SECRET_KEY must be long, varied and not a placeholder; none at all is the web's to
    refuse (needs.py), since nothing else signs."""
    if not key:
        return
    require(
        len(key) >= SECRET_KEY_LENGTH and len(set(key)) >= 5,
        f"PRODUCTION needs a SECRET_KEY of {SECRET_KEY_LENGTH}+ varied characters",
    )
    for word in PLACEHOLDERS:
        require(word not in key.lower(), f"PRODUCTION refuses a placeholder SECRET_KEY (it says {word!r})")


def check_password(name: str, url: str) -> None:
    """A service given by URL must be reached with a password (a URL not given is not used)."""
    if url:
        parsed = urlparse(url)
        require(
            bool(parsed.password),
            f"PRODUCTION needs a password in {name} ({parsed.scheme}://USER:PASSWORD@{parsed.hostname}...)",
        )


def check_kafka() -> None:
    """Tiles and results cross the network through the broker: encrypted, and as a known client."""
    protocol = env_str("KAFKA_SECURITY_PROTOCOL", "").upper()
    require(
        protocol in ("SSL", "SASL_SSL"),
        f"PRODUCTION needs KAFKA_SECURITY_PROTOCOL SASL_SSL or SSL, got {protocol or 'none (plaintext)'}",
    )
    needed: tuple[str, ...] = ("KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")
    if protocol == "SSL":  # mutual TLS: the client certificate is the credential
        needed = ("KAFKA_SSL_CERTIFICATE_LOCATION", "KAFKA_SSL_KEY_LOCATION")
    missing = [name for name in needed if not env_str(name, "")]
    require(not missing, f"PRODUCTION with KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}")
