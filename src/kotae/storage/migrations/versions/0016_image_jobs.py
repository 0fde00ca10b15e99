"""Image requests an API replica (`serve --no-worker`) hands to workers: the request, its
lease while a worker generates, and the answer (or error) the replica returns.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("outcome", sa.JSON(), nullable=True),
    )
    op.create_index("ix_image_jobs_status", "image_jobs", ["status", "created_ns"])


def downgrade() -> None:
    op.drop_index("ix_image_jobs_status", "image_jobs")
    op.drop_table("image_jobs")
