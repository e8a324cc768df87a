"""Project, Membership and ApiKey, moved here from the feedback app. The tables exist
already (feedback 0001-0008 made them; db_table keeps their names): the models enter this
app's state only, and their content types (admin history, permissions) follow them."""

import django.db.models.deletion
import django.utils.timezone
import tenancy.models
from django.conf import settings
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

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('contenttypes', '0002_remove_content_type_name'),
        ('feedback', '0008_publishable_keys'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Membership',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('role', models.CharField(choices=[('admin', 'Project admin'), ('lead', 'Review lead'), ('annotator', 'Annotator'), ('ml', 'ML engineer (exports)')], default='annotator', max_length=16)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='gleaner_memberships', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'feedback_membership',
                    },
                ),
                migrations.CreateModel(
                    name='Project',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('slug', models.SlugField(max_length=64, unique=True)),
                        ('name', models.CharField(max_length=200)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('members', models.ManyToManyField(related_name='gleaner_projects', through='tenancy.Membership', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'feedback_project',
                        'ordering': ['slug'],
                    },
                ),
                migrations.AddField(
                    model_name='membership',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='tenancy.project'),
                ),
                migrations.CreateModel(
                    name='ApiKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(blank=True, max_length=100)),
                        ('kind', models.CharField(choices=[('secret', 'Secret (server)'), ('publishable', 'Publishable (browser)')], default='secret', max_length=16)),
                        ('prefix', models.CharField(help_text='First characters, to recognise a key.', max_length=16)),
                        ('hashed_key', models.CharField(editable=False, max_length=64, unique=True)),
                        ('allowed_origins', models.JSONField(blank=True, default=list, help_text='Publishable keys: the exact origins (https://app.example.com) whose pages may send events with this key.', validators=[tenancy.models.validate_origins])),
                        ('rate_limit_per_minute', models.PositiveIntegerField(blank=True, help_text='Requests per minute; empty uses the site default (its own for publishable keys).', null=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('revoked_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_keys', to='tenancy.project')),
                    ],
                    options={
                        'verbose_name': 'API key',
                        'db_table': 'feedback_apikey',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='membership',
                    constraint=models.UniqueConstraint(fields=('project', 'user'), name='membership_unique_user'),
                ),
            ],
            database_operations=[
                migrations.RunPython(content_types_follow, migrations.RunPython.noop)
            ],
        )
    ]
