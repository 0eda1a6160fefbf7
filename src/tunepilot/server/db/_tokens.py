"""API tokens: made once, shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from tunepilot.server.db._engine import Database
from tunepilot.server.db._models import ApiToken
from tunepilot.server._settings import normalize_db_url

TOKEN_PREFIX = "tp_"


def hash_token(token: str) -> str:
    """SHA-256 hex digest. Tokens carry 256 random bits, so a slow hash adds nothing."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(url: str, *, name: str = "default") -> str:
    """Make an API token, store its digest in the database at ``url``, return the token.

    The token is not stored anywhere and cannot be shown again.
    """
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    database = Database(normalize_db_url(url))
    try:
        with database.session() as session:
            session.add(ApiToken(name=name[:128], token_hash=hash_token(token)))
    finally:
        database.dispose()
    return token


def token_digests(database: Database) -> set[str]:
    """The digests of every stored token."""
    with database.session() as session:
        return set(session.scalars(select(ApiToken.token_hash)))
