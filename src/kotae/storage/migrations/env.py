from __future__ import annotations

from alembic import context

from kotae.storage.orm import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("kotae runs its migrations through kotae.storage.engine.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
