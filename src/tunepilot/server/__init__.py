"""The sweep server: a FastAPI app over Optuna studies in one database.

Needs the ``server`` extra (``pip install 'tunepilot[server]'``); ``import tunepilot``
works without it.

Example:
    .. code-block:: python

        import uvicorn
        from tunepilot.server import Settings, create_app, upgrade_database

        settings = Settings(db="sqlite:///sweeps.db")
        upgrade_database(settings.db)
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port)
"""

from tunepilot.server._imports import check_server_extra

check_server_extra()

from tunepilot.server._app import create_app  # noqa: E402
from tunepilot.server._settings import Settings  # noqa: E402
from tunepilot.server.db import create_token, database_revision, upgrade_database  # noqa: E402

__all__ = ["Settings", "create_app", "create_token", "database_revision", "upgrade_database"]
