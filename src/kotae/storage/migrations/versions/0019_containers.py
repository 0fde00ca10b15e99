"""Code interpreter containers, their files, and the code runs API replicas queue for
workers.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "containers",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "project_id",
            sa.String(64),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_active_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_minutes", sa.Integer(), nullable=False),
        sa.Column("memory_limit", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("host", sa.String(64), nullable=True),
        sa.Column("host_until", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_containers_project", "containers", ["project_id", "pk"])
    op.create_table(
        "container_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("container_id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
    )
    op.create_index("ix_container_runs_status", "container_runs", ["status", "created_ns"])
    op.create_table(
        "container_files",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "container_id",
            sa.String(64),
            sa.ForeignKey("containers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("blob_key", sa.String(256), nullable=False),
    )
    op.create_index("ix_container_files_container", "container_files", ["container_id", "pk"])


def downgrade() -> None:
    op.drop_index("ix_container_runs_status", "container_runs")
    op.drop_table("container_runs")
    op.drop_index("ix_container_files_container", "container_files")
    op.drop_table("container_files")
    op.drop_index("ix_containers_project", "containers")
    op.drop_table("containers")
