"""Project, Membership and ApiKey moved to the tenancy app: their tables stay (db_table), so
this only changes Django's model state; the foreign keys keep pointing at the same table."""

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
        ('exports', '0004_project_in_tenancy'),
        ('feedback', '0008_publishable_keys'),
        ('playground', '0002_project_in_tenancy'),
        ('review', '0010_project_in_tenancy'),
        ('tenancy', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='apikey',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='apikey',
                    name='project',
                ),
                migrations.RemoveConstraint(
                    model_name='membership',
                    name='membership_unique_user',
                ),
                migrations.RemoveField(
                    model_name='project',
                    name='members',
                ),
                migrations.AlterField(
                    model_name='session',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sessions', to='tenancy.project'),
                ),
                migrations.AlterField(
                    model_name='label',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='labels', to='tenancy.project'),
                ),
                migrations.AlterField(
                    model_name='event',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='tenancy.project'),
                ),
                migrations.AlterField(
                    model_name='generation',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='generations', to='tenancy.project'),
                ),
                migrations.AlterField(
                    model_name='routingpolicy',
                    name='project',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='policy', to='tenancy.project'),
                ),
                migrations.DeleteModel(
                    name='ApiKey',
                ),
                migrations.RemoveField(
                    model_name='membership',
                    name='project',
                ),
                migrations.RemoveField(
                    model_name='membership',
                    name='user',
                ),
                migrations.DeleteModel(
                    name='Project',
                ),
                migrations.DeleteModel(
                    name='Membership',
                ),
            ],
            database_operations=[
                migrations.RunPython(content_types_follow, migrations.RunPython.noop)
            ],
        )
    ]
