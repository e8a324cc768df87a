from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "Feedback"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from feedback.models import project_policy_ensure
        from tenancy.models import Project

        # Every project has its routing policy, however it was created (admin, team pages,
        # commands): the tenancy app knows nothing of feedback's settings.
        post_save.connect(
            project_policy_ensure, sender=Project, dispatch_uid="feedback-project-policy"
        )
