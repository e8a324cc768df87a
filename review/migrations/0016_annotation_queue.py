"""Annotation.queue: its item's queue, copied once here, so that the agreement recompute
reads a queue's answers without joining them to its items (review/gate.py). Made required,
with an index for that read, by 0017: in a migration of its own, as PostgreSQL alters no
table with the copy's foreign-key checks still pending in the transaction."""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = (
    "UPDATE review_annotation SET queue_id = "
    "(SELECT i.queue_id FROM review_item i WHERE i.id = review_annotation.item_id) "
    "WHERE queue_id IS NULL"
)


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0015_annotation_covered_fk_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotation",
            name="queue",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="review.queue",
            ),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
