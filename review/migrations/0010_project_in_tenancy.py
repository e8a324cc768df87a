"""Project moved to the tenancy app (same table): model state only."""

import django.db.models.deletion
from django.db import migrations, models


MOVED = ["project", "membership", "apikey"]


def content_types_follow(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    taken = set(
        ContentType.objects.filter(app_label="tenancy", model__in=MOVED).values_list(
            "model", flat=True
        )
    )
    ContentType.objects.filter(app_label="feedback", model__in=MOVED).exclude(
        model__in=taken
    ).update(app_label="tenancy")


class Migration(migrations.Migration):

    dependencies = [
        ('review', '0009_high_retry_verdict_decides'),
        ('tenancy', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='queue',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='queues', to='tenancy.project'),
                ),
            ],
            database_operations=[
                migrations.RunPython(content_types_follow, migrations.RunPython.noop)
            ],
        )
    ]
