"""Database: tunepilot's tables beside Optuna's, migrations, tokens, sessions."""

from tunepilot.server.db._engine import Database, make_storage
from tunepilot.server.db._migrate import (
    check_database,
    database_revision,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from tunepilot.server.db import _repository as repository
from tunepilot.server.db._models import (
    ApiToken,
    Base,
    MetricRow,
    OnlineApp,
    OnlineDecision,
    Project,
    Run,
    Sweep,
)
from tunepilot.server.db._online import OnlineStateStore
from tunepilot.server.db._tokens import (
    TokenInfo,
    create_token,
    hash_token,
    list_tokens,
    revoke_token,
    token_digests,
)

__all__ = [
    "ApiToken",
    "Base",
    "Database",
    "MetricRow",
    "OnlineApp",
    "OnlineDecision",
    "OnlineStateStore",
    "Project",
    "Run",
    "Sweep",
    "TokenInfo",
    "check_database",
    "create_token",
    "database_revision",
    "downgrade_database",
    "hash_token",
    "head_revision",
    "list_tokens",
    "make_storage",
    "repository",
    "revoke_token",
    "token_digests",
    "upgrade_database",
]
