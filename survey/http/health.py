"""`/healthz` (the process answers) and `/readyz` (it can serve: database reachable, its
schema at the migrations' head, and a writer able to take the hot tables' write locks within
a second). Load balancers route to a node only while /readyz is 200."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from litestar import MediaType, Response, get

from survey.http.dependencies import Context
from survey.kernel import db

__all__ = ["health_handlers"]


@get("/healthz", media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@cache
def _head_revisions(script_location: str) -> frozenset[str]:
    """The migration heads shipped with this code (read once per process)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


@get("/readyz", media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=True)
def readyz(context: Context) -> Response[dict[str, object]]:
    heads = _head_revisions(
        db.alembic_config(context.settings).get_main_option("script_location") or ""
    )
    try:
        with context.engine.execution_options(read_only=True).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
    except sa.exc.SQLAlchemyError as exc:
        problem = f"database unreachable: {type(exc).__name__}"
        return Response({"status": "unavailable", "problems": [problem]}, status_code=503)
    if current != heads:
        problem = (
            f"database schema at {sorted(current) or 'nothing'}, code expects {sorted(heads)}; "
            "run `survey db upgrade`"
        )
        return Response({"status": "unavailable", "problems": [problem]}, status_code=503)
    busy = db.write_probe(context.engine)  # after the schema check: the tables exist
    if busy is not None:
        return Response({"status": "unavailable", "problems": [busy]}, status_code=503)
    return Response({"status": "ready", "revision": sorted(current)}, status_code=200)


def health_handlers() -> list[Any]:
    return [healthz, readyz]
