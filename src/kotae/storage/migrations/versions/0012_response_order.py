"""Responses made in the same second keep the order they were made in (the responses list
sorts by created_at, then this nanosecond stamp).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("created_ns", sa.BigInteger(), nullable=True))
    op.create_index("ix_responses_project_created", "responses", ["project_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_project_created", "responses")
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("created_ns")
