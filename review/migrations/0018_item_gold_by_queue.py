from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0017_annotation_queue_required"),
    ]

    operations = [
        # The agreement recompute's read of a queue's gold items (few).
        migrations.AddIndex(
            model_name="item",
            index=models.Index(
                condition=models.Q(("gold_answers__isnull", False)),
                fields=["queue"],
                name="item_gold_by_queue",
            ),
        ),
    ]
