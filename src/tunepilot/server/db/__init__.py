"""Database: tunepilot's tables beside Optuna's, migrations, tokens, sessions."""

from tunepilot.server.db._engine import Database, make_storage
from tunepilot.server.db._migrate import (
    check_database,
    database_revision,
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
from tunepilot.server.db._tokens import create_token, hash_token, token_digests

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
    "check_database",
    "create_token",
    "database_revision",
    "hash_token",
    "head_revision",
    "make_storage",
    "repository",
    "token_digests",
    "upgrade_database",
]
