"""API tokens: made once, shown once, stored only as a SHA-256 digest; listed and revoked."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from tunepilot.exceptions import NotFoundError
from tunepilot.server._settings import normalize_db_url
from tunepilot.server.db._engine import Database
from tunepilot.server.db._models import ApiToken

TOKEN_PREFIX = "tp_"


@dataclass(frozen=True)
class TokenInfo:
    """What is known of a stored token: never the token itself.

    ``fingerprint`` is the start of its SHA-256 digest, to tell tokens of one name apart.
    """

    id: int
    name: str
    created_at: datetime
    fingerprint: str


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


def list_tokens(url: str) -> list[TokenInfo]:
    """Every stored token of the database at ``url``, oldest first."""
    database = Database(normalize_db_url(url))
    try:
        with database.session() as session:
            rows = session.scalars(select(ApiToken).order_by(ApiToken.id))
            return [_info(row) for row in rows]
    finally:
        database.dispose()


def revoke_token(url: str, which: str) -> list[TokenInfo]:
    """Delete the token with id ``which``, or every token named ``which``; return them.

    The server stops taking a revoked token within a few seconds, and ends the
    dashboard sessions it opened.

    Raises:
        NotFoundError: no token has that id or name.
    """
    database = Database(normalize_db_url(url))
    try:
        with database.session() as session:
            match = ApiToken.id == int(which) if which.isdigit() else ApiToken.name == which
            found = [_info(row) for row in session.scalars(select(ApiToken).where(match))]
            if not found:
                raise NotFoundError(f"no token with id or name {which!r}; "
                                    "'tunepilot token list' shows them")
            session.execute(delete(ApiToken).where(match))
        return found
    finally:
        database.dispose()


def token_digests(database: Database) -> set[str]:
    """The digests of every stored token."""
    with database.session() as session:
        return set(session.scalars(select(ApiToken.token_hash)))


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(id=row.id, name=row.name, created_at=row.created_at,
                     fingerprint=row.token_hash[:12])
