"""Drop the own indexes of Annotation's foreign keys: annotation_once_per_user (item_id,
user_id) and annotation_by_user (user_id, created_at) lead with them
(core/migration_ops.py: the constraints stay)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from core.migration_ops import drop_fk_indexes

COVERED = [("review_annotation", "item_id"), ("review_annotation", "user_id")]


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0014_item_fillfactor"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[drop_fk_indexes(COVERED)],
            state_operations=[
                migrations.AlterField(
                    model_name="annotation",
                    name="item",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="annotations",
                        to="review.item",
                    ),
                ),
                migrations.AlterField(
                    model_name="annotation",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="review_annotations",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
    ]
