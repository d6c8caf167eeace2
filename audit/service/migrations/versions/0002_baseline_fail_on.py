"""a project's baseline fail_on gets its own column

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("baseline_fail_on", sa.String(length=10), nullable=False,
                                   server_default="never"))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("baseline_fail_on")
