"""Labels indexed by (project, id) instead of by project alone: exports read a project's
labels in id order without sorting them, and every label insert still updates one index
for the project (core/migration_ops.py: the foreign key's constraint stays)."""

import django.db.models.deletion
from django.db import migrations, models

from core.migration_ops import drop_fk_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0014_drop_covered_fk_indexes"),
        ("tenancy", "__first__"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="label",
            index=models.Index(fields=["project", "id"], name="label_by_project"),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[drop_fk_indexes([("feedback_label", "project_id")])],
            state_operations=[
                migrations.AlterField(
                    model_name="label",
                    name="project",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="labels",
                        to="tenancy.project",
                    ),
                ),
            ],
        ),
    ]
