"""Annotation.queue required (filled by 0016), and indexed for the agreement recompute."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0016_annotation_queue"),
    ]

    operations = [
        migrations.AlterField(
            model_name="annotation",
            name="queue",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="review.queue",
            ),
        ),
        migrations.AddIndex(
            model_name="annotation",
            index=models.Index(fields=["queue"], name="annotation_by_queue"),
        ),
    ]
