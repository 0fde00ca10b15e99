"""Stored chat completions (`store: true` on /v1/chat/completions): the completion as it was
answered and the request's messages, per project.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_completions",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "project_id",
            sa.String(64),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
    )
    op.create_index("ix_chat_completions_project", "chat_completions", ["project_id", "pk"])


def downgrade() -> None:
    op.drop_index("ix_chat_completions_project", "chat_completions")
    op.drop_table("chat_completions")
