from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0011_flags_history_exclusions"),
    ]

    operations = [
        # Exports look for a project's review pairs (free-content items) in its queues:
        # this index holds only those, not the label items that fill most queues.
        migrations.AddIndex(
            model_name="item",
            index=models.Index(
                condition=models.Q(("label__isnull", True)),
                fields=["queue", "id"],
                name="item_free_by_queue",
            ),
        ),
    ]
