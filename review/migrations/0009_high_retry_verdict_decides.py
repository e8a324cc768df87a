"""The default high-retry queue's deciding question (its first choice question) was "Why did
the user retry?", which has no accepting answer, so nothing in the queue could ever be
accepted. Queues that still have the old default questions and no answers yet get the new
ones: the verdict first ("yes" accepts), the cause second. Answered questions are never
rewritten: the answers were given to the old wording."""

from django.db import migrations

OLD_GUIDELINES = (
    "The user regenerated three or more times in a row. Judge why, and whether the "
    "answer they ended with is usable."
)
NEW_GUIDELINES = (
    "The user regenerated three or more times in a row.\n\n"
    "* **Pairs**: is the answer the user kept (*chosen*) clearly better than the one they "
    "discarded (*rejected*)? Equally good or equally bad: answer **no**.\n"
    "* **Retry flags** (one answer: the first of the chain): did that answer fail the user?\n\n"
    "Then say why you think the user retried."
)
CAUSES = ["model failed", "user exploring", "prompt unclear", "other"]
VERDICTS = ["yes", "no", "unsure"]
# (key, type, prompt, choices, required, position) of each question, old and new.
OLD = [
    ("cause", "choice", "Why did the user retry?", CAUSES, True, 0),
    ("verdict", "choice", "Is the last answer usable?", VERDICTS, True, 1),
    ("note", "text", "Notes (optional)", [], False, 2),
]
NEW = {
    "verdict": ("Is the derived label right?", 0),
    "cause": ("Why did the user retry?", 1),
    "note": ("Notes (optional)", 2),
}


def verdict_first(apps, schema_editor):
    Queue = apps.get_model("review", "Queue")
    Annotation = apps.get_model("review", "Annotation")
    for queue in Queue.objects.filter(reason="high_retry"):
        questions = list(queue.questions.order_by("position", "id"))
        shape = [(q.key, q.type, q.prompt, q.choices, q.required, q.position) for q in questions]
        if shape != OLD or Annotation.objects.filter(item__queue=queue).exists():
            continue  # changed by a lead, or answered: left as it is
        for question in questions:
            question.prompt, question.position = NEW[question.key]
            question.save(update_fields=["prompt", "position"])
        if queue.guidelines == OLD_GUIDELINES:
            queue.guidelines = NEW_GUIDELINES
            queue.save(update_fields=["guidelines"])


class Migration(migrations.Migration):
    dependencies = [("review", "0008_annotation_by_time_index")]

    operations = [migrations.RunPython(verdict_first, migrations.RunPython.noop)]
