"""Drop the indexes of foreign keys that a composite index or constraint leads with.

Only the indexes go: the AlterFields change the state, while the database drops the
index by name, so the foreign key constraints stay as they are (Django's own AlterField
would drop and re-add each constraint, which re-checks every row of the table).
"""

import django.db.models.deletion
from django.db import migrations, models

# (table, column) of each foreign key whose own index is dropped.
COVERED = [
    ("feedback_event", "generation_id"),  # event_by_generation (generation_id, timestamp)
    ("feedback_event", "project_id"),  # event_unique_client_id (project_id, client_id)
    ("feedback_event", "session_id"),  # event_by_session (session_id, timestamp)
    ("feedback_generation", "project_id"),  # generation_unique_ref (project_id, external_id)
    ("feedback_generation", "session_id"),  # generation_by_session (session_id, created_at)
    ("feedback_session", "project_id"),  # session_unique_ref (project_id, external_id)
]


def _index_name(schema_editor, table, column):
    # The name Django gave the index when it created the foreign key.
    return schema_editor._create_index_name(table, [column], suffix="")


def drop_indexes(apps, schema_editor):
    quote = schema_editor.quote_name
    for table, column in COVERED:
        schema_editor.execute(f"DROP INDEX IF EXISTS {quote(_index_name(schema_editor, table, column))}")


def create_indexes(apps, schema_editor):
    quote = schema_editor.quote_name
    for table, column in COVERED:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(_index_name(schema_editor, table, column))} "
            f"ON {quote(table)} ({quote(column)})"
        )


class Migration(migrations.Migration):

    dependencies = [
        ("feedback", "0010_edit_ratio_min_help"),
        ("tenancy", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="generation",
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="events", to="feedback.generation"),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="project",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="events", to="tenancy.project"),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="session",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="events", to="feedback.session"),
                ),
                migrations.AlterField(
                    model_name="generation",
                    name="project",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="generations", to="tenancy.project"),
                ),
                migrations.AlterField(
                    model_name="generation",
                    name="session",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="generations", to="feedback.session"),
                ),
                migrations.AlterField(
                    model_name="session",
                    name="project",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="sessions", to="tenancy.project"),
                ),
            ],
        ),
    ]
