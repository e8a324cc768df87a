from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from tenancy.models import Project


class Session(models.Model):
    class Outcome(models.TextChoices):
        OPEN = "open"
        COMPLETED = "completed"
        ABANDONED = "abandoned"
        # Timed out in a project that does not always send outcome events: the user went
        # quiet, which is no evidence that the session failed.
        INACTIVE = "inactive"

    # db_index=False: the foreign keys of Session, Generation and Event that an index or
    # constraint of theirs leads with get no index of their own (ingestion writes them all).
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="sessions", db_index=False
    )
    external_id = models.CharField(max_length=255)
    user_ref = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.OPEN)
    outcome_signal = models.CharField(max_length=255, blank=True)
    retries = models.PositiveIntegerField(default=0)
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    timed_out_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Timed out by the inactivity sweep: abandoned if the project always sends "
        "outcome events, else inactive.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Derivation bookkeeping: ingestion bumps `changes`; a derivation that read the log at
    # change N sets `derived_changes` to N. The session needs deriving while they differ.
    changes = models.PositiveBigIntegerField(default=1)
    derived_changes = models.PositiveBigIntegerField(default=0)
    derived_at = models.DateTimeField(null=True, blank=True)
    # A derivation that raised: the session stays pending and is retried with backoff.
    derive_failures = models.PositiveIntegerField(
        default=0, help_text="Derivations that failed in a row; 0 once one succeeds."
    )
    derive_error = models.TextField(blank=True, help_text="Why the last derivation failed.")
    derive_retry_at = models.DateTimeField(
        null=True, blank=True, help_text="A failed session is not derived again before this."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="session_unique_ref")
        ]
        indexes = [
            # Derivation takes each project's pending sessions in id order.
            models.Index(
                fields=["project", "id"],
                condition=Q(changes__gt=F("derived_changes")),
                name="session_pending_by_project",
            ),
            # The inactivity sweep: open sessions of a project by last activity.
            models.Index(
                fields=["project", "last_event_at"],
                condition=Q(outcome="open"),
                name="session_open_by_activity",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class Generation(models.Model):
    """A model output, materialised from its `generation` event (the log stays the truth)."""

    # Like the event log's references (`Event`), not constraints in the database: ingestion
    # sets both from rows of the same transaction; Django's delete still cascades.
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        related_name="generations",
        db_index=False,
        db_constraint=False,
    )
    session = models.ForeignKey(
        Session,
        on_delete=models.CASCADE,
        related_name="generations",
        db_index=False,
        db_constraint=False,
    )
    external_id = models.CharField(max_length=255)
    input = models.JSONField(default=list, help_text="Chat messages: [{role, content}].")
    output = models.TextField()
    model = models.CharField(max_length=200, blank=True)
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )
    replaces_ref = models.CharField(max_length=255, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    signals = models.JSONField(default=dict, blank=True, help_text="Derived from the log.")
    created_at = models.DateTimeField(help_text="The generation event's timestamp.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="generation_unique_ref")
        ]
        indexes = [
            models.Index(fields=["session", "created_at"], name="generation_by_session"),
            # Late linking: generations whose predecessor has not arrived yet.
            models.Index(
                fields=["project", "replaces_ref"],
                condition=Q(replaces__isnull=True) & ~Q(replaces_ref=""),
                name="generation_unlinked",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class Event(models.Model):
    """One behavioural event, append-only. `client_id` is the client's idempotency key."""

    class Type(models.TextChoices):
        GENERATION = "generation"
        EDIT = "edit"
        REGENERATE = "regenerate"
        COPY = "copy"
        SHARE = "share"
        VIEW = "view"
        RATING = "rating"
        SESSION_OUTCOME = "session_outcome"

    # No database constraints on the log's references (docs/operations.md, "The event log"):
    # checked per row at commit, they were a fifth of an ingested batch's database time.
    # Ingestion sets them from rows it has just read or written, in the same transaction;
    # nothing deletes sessions or generations apart from their project, and Django's
    # delete still cascades (or nulls) through these fields.
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    client_id = models.CharField(max_length=255)
    type = models.CharField(max_length=20, choices=Type.choices)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    session = models.ForeignKey(
        Session,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    generation = models.ForeignKey(
        Generation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    generation_ref = models.CharField(max_length=255, blank=True)
    user_ref = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(default=dict, help_text="The type's own fields, as sent.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "client_id"], name="event_unique_client_id")
        ]
        indexes = [
            models.Index(fields=["session", "timestamp"], name="event_by_session"),
            models.Index(fields=["generation", "timestamp"], name="event_by_generation"),
            # Late linking: events that arrived before their generation.
            models.Index(
                fields=["project", "generation_ref"],
                condition=Q(generation__isnull=True) & ~Q(generation_ref=""),
                name="event_unlinked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.client_id}"


# A generation metadata key that may name the product feature (feedback/quality.py).
FEATURE_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


class RoutingPolicy(models.Model):
    """A project's thresholds for label conversion and routing (docs/labels.md)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="policy")
    edit_ratio_min = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Edits below this ratio are cosmetic: they make no label.",
    )
    edit_ratio_max = models.FloatField(
        default=0.90,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Edits above this ratio are rewrites: reviewed, not auto-accepted.",
    )
    retry_threshold = models.PositiveIntegerField(
        default=3,
        validators=[MinValueValidator(2)],
        help_text="Regenerations in a row that flag a chain as high-retry.",
    )
    confidence_threshold = models.FloatField(
        default=0.9,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Labels below this confidence go to review instead of export. A label's "
        "confidence estimates the share of such labels that are right (docs/labels.md).",
    )
    qa_sample_rate = models.FloatField(
        default=0.02,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of auto-accepted labels also sent to review, to measure precision.",
    )
    inactivity_timeout_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="Sessions with no outcome and no event for this long time out: abandoned "
        "if the project always sends outcome events, else inactive.",
    )
    sends_outcome_events = models.BooleanField(
        default=False,
        help_text="The product sends a session_outcome event (completed or abandoned) for "
        "every session that ends. Only then is a silent, timed-out session a failure "
        "(session_abandoned, reviewed); otherwise it is inactive, and only a user who "
        "regenerated and left without acting on the last answer gets a weak negative.",
    )
    target_precision = models.FloatField(
        default=0.95,
        validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="Precision training data must reach. A rule x confidence band with "
        "min_verdicts verdicts is auto-accepted when the lower bound of its measured "
        "precision reaches it, and reviewed when it does not (docs/quality.md).",
    )
    min_verdicts = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="Verdicts a rule x band needs before its measured precision decides "
        "routing; until then the confidence threshold does.",
    )
    min_human_share = models.FloatField(
        default=0.10,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Least share of a training export that people verified; an export below "
        "it, or below the target precision, fails unless asked to allow it.",
    )
    quality_feature_key = models.CharField(
        max_length=64,
        default="feature",
        validators=[RegexValidator(FEATURE_KEY_PATTERN, "Letters, digits, _ and -.")],
        help_text="Generation metadata key that names the product feature, for precision "
        "and signals by feature. Changed here, run manage.py rebuild_signal_rollups.",
    )
    drift_tolerance = models.FloatField(
        default=0.10,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Collapse guard: a rule whose weekly precision falls this far below the "
        "weeks before, or whose share of training moves this much, is routed to review.",
    )
    half_life_days = models.FloatField(
        default=30.0,
        validators=[MinValueValidator(0.1)],
        help_text="Recency decay of export weights: a label this old weighs half.",
    )
    weight_edit = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    weight_regenerate = models.FloatField(default=0.9, validators=[MinValueValidator(0.0)])
    weight_copy_share = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0)],
        help_text="Strong acceptance; keep it above the passive (completed) weight.",
    )
    weight_completed = models.FloatField(default=0.6, validators=[MinValueValidator(0.0)])
    weight_abandoned = models.FloatField(default=0.6, validators=[MinValueValidator(0.0)])
    weight_rating = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    weight_review = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0)],
        help_text="Pairs people judged directly (free content with two responses).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "routing policies"

    def __str__(self) -> str:
        return f"Routing policy of {self.project}"

    def clean(self) -> None:
        errors = {}
        ratios = (self.edit_ratio_min, self.edit_ratio_max)
        if None not in ratios and ratios[0] >= ratios[1]:
            errors["edit_ratio_min"] = "Must be below the maximum edit ratio."
        if (
            self.weight_copy_share is not None
            and self.weight_completed is not None
            and self.weight_copy_share < self.weight_completed
        ):
            errors["weight_copy_share"] = (
                "Copy/share is strong acceptance: keep it at or above the completed weight."
            )
        if errors:
            raise ValidationError(errors)


def project_policy_ensure(
    sender: type[Project], instance: Project, created: bool, **kwargs: object
) -> None:
    """post_save of Project (connected in FeedbackConfig.ready): a new project gets its policy."""
    if created and not kwargs.get("raw"):
        RoutingPolicy.objects.get_or_create(project=instance)


class Label(models.Model):
    """A training label derived from one session's behaviour.

    Derivation owns the content and `needs_review`; review owns `review_outcome`. The
    status shown to people is computed from both (see `status`).
    """

    class Kind(models.TextChoices):
        PREFERENCE_PAIR = "preference_pair"
        COMPLETION = "completion"
        HIGH_RETRY = "high_retry"
        RATING = "rating"

    class Source(models.TextChoices):
        EDIT = "edit"
        REGENERATE = "regenerate"
        COPY = "copy"
        SHARE = "share"
        OUTCOME = "outcome"
        RATING = "rating"

    class ReviewReason(models.TextChoices):
        LOW_CONFIDENCE = "low_confidence"
        HIGH_RETRY = "high_retry"
        ABANDONED = "abandoned"
        QA_SAMPLE = "qa_sample"

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        EXCLUDED = "excluded"

    # No indexes of their own: label_by_project leads with project, label_unique_key with
    # session, label_by_generation is the generation's (each would cost every label
    # insert for nothing).
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="labels", db_index=False
    )
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="labels", db_index=False
    )
    generation = models.ForeignKey(
        Generation, on_delete=models.CASCADE, related_name="labels", db_index=False
    )
    other_generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=600, help_text="Stable within the session.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    source = models.CharField(max_length=20, choices=Source.choices)
    rule = models.CharField(max_length=50)
    prompt = models.JSONField(default=list)
    chosen = models.TextField(blank=True)
    rejected = models.TextField(blank=True)
    completion = models.TextField(blank=True)
    label = models.BooleanField(null=True, blank=True)
    confidence = models.FloatField(help_text="Calibrated by people's verdicts on the rule.")
    rule_confidence = models.FloatField(
        null=True, blank=True, help_text="The rule's own heuristic confidence (the prior)."
    )
    weight = models.FloatField()
    evidence = models.JSONField(default=dict, blank=True)
    needs_review = models.BooleanField(default=False)
    review_reason = models.CharField(max_length=20, choices=ReviewReason.choices, blank=True)
    review_outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    review_note = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(
        default=True, help_text="False once re-derivation no longer produces this label."
    )
    model = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField(help_text="When the behaviour happened (for recency).")
    derived_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "key"], name="label_unique_key"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="label_confidence_0_1"
            ),
        ]
        indexes = [
            # Exports read a project's labels in id order: from this index, with no sort
            # (a project of 100k labels sorted 140 MB on disk before its first row).
            models.Index(fields=["project", "id"], name="label_by_project"),
            # Exports: a project's usable labels by time.
            models.Index(
                fields=["project", "occurred_at"],
                condition=Q(active=True),
                name="label_active_by_time",
            ),
            models.Index(fields=["generation"], name="label_by_generation"),
            # Measured precision: the labels people gave a verdict on, by rule.
            models.Index(
                fields=["project", "rule"],
                condition=Q(review_outcome__in=["accepted", "rejected"]),
                name="label_verdicts",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}/{self.rule} #{self.pk}"

    @property
    def status(self) -> str:
        if not self.active:
            return "excluded"
        if self.review_outcome:
            return self.review_outcome
        return "in_review" if self.needs_review else "auto_accepted"


# Signal dashboards (feedback/signals.py, docs/signals.md). The label rules counted per
# rollup row, one column each ("label_<rule>"); keep in step with feedback/derivation.py.
SIGNAL_RULES = (
    "edit_correction",
    "edit_rewrite",
    "regenerate_then_action",
    "copy_accept",
    "share_accept",
    "session_completed",
    "session_abandoned",
    "retry_chain",
    "explicit_rating",
)
# The counts a generation adds (0 or 1 each, `sessions` on its session's last generation).
SIGNAL_COUNTS = (
    "sessions",
    "edited",
    "edit_cosmetic",
    "edit_correction",
    "edit_rewrite",
    "regenerated",
    "high_retry",
    "copied",
    "shared",
    "completed",
    "abandoned",
    "thumbs",
    "thumbs_up",
)
# `SignalContribution.counts` packs them: bit i is SIGNAL_COUNTS[i]; SIGNAL_LABEL_BITS bits
# from SIGNAL_LABEL_SHIFT + SIGNAL_LABEL_BITS * j count the labels of SIGNAL_RULES[j].
SIGNAL_LABEL_SHIFT = 16
SIGNAL_LABEL_BITS = 4
# Reading time histogram: bin 0 is (0, 250 ms), bin k is [250 * 2**(k-1), 250 * 2**k) ms,
# the last bin open-ended (dwell is clamped at a day).
DWELL_BINS = 20


class PromptPattern(models.Model):
    """A project's name for a prompt pattern (a key of `feedback.signals.pattern_of`)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    name = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="prompt_pattern_unique_key")
        ]

    def __str__(self) -> str:
        return self.name


class SignalContribution(models.Model):
    """What one generation adds to its project's signal rollups, as last derived: its
    groups, its day, its counts packed in one integer (a narrow row: derivation writes
    one per generation) and its reading-time bin.

    Kept so that re-deriving a session takes back exactly what it added before (late
    events and re-derivation never count twice). Written only by derivation and
    `feedback.signals.rebuild_rollups`.
    """

    # No foreign key constraints: derivation writes a row per generation it derives, and
    # checking them costs a probe each; deletions cascade through the ORM all the same.
    generation = models.OneToOneField(
        Generation,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        db_constraint=False,
    )
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    day = models.DateField(help_text="UTC date of the generation.")
    model = models.CharField(max_length=200, blank=True)
    feature = models.CharField(max_length=200, blank=True)
    pattern = models.CharField(max_length=200, blank=True)
    counts = models.BigIntegerField(
        default=0,
        help_text="Packed: bit i is SIGNAL_COUNTS[i]; 4 bits from bit 16 + 4 j count the "
        "labels of SIGNAL_RULES[j] (SIGNAL_LABEL_SHIFT, SIGNAL_LABEL_BITS).",
    )
    dwell_bin = models.SmallIntegerField(null=True, blank=True, help_text="None: not read.")

    def __str__(self) -> str:
        return f"contribution of generation {self.pk}"


class SignalRollup(models.Model):
    """Signal counts of a project's generations per UTC day and group of one dimension
    (model, feature or prompt pattern). Every generation is counted once per dimension,
    so the groups of any one dimension add up to the project's totals."""

    class Dimension(models.TextChoices):
        MODEL = "model"
        FEATURE = "feature"
        PATTERN = "pattern"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    dimension = models.CharField(max_length=8, choices=Dimension.choices)
    group_key = models.CharField(max_length=200, blank=True)
    day = models.DateField()
    generations = models.IntegerField(default=0)
    sessions = models.IntegerField(default=0)
    edited = models.IntegerField(default=0)
    edit_cosmetic = models.IntegerField(default=0)
    edit_correction = models.IntegerField(default=0)
    edit_rewrite = models.IntegerField(default=0)
    regenerated = models.IntegerField(default=0)
    high_retry = models.IntegerField(default=0)
    copied = models.IntegerField(default=0)
    shared = models.IntegerField(default=0)
    completed = models.IntegerField(default=0)
    abandoned = models.IntegerField(default=0)
    thumbs = models.IntegerField(default=0)
    thumbs_up = models.IntegerField(default=0)
    dwell_0 = models.IntegerField(default=0)
    dwell_1 = models.IntegerField(default=0)
    dwell_2 = models.IntegerField(default=0)
    dwell_3 = models.IntegerField(default=0)
    dwell_4 = models.IntegerField(default=0)
    dwell_5 = models.IntegerField(default=0)
    dwell_6 = models.IntegerField(default=0)
    dwell_7 = models.IntegerField(default=0)
    dwell_8 = models.IntegerField(default=0)
    dwell_9 = models.IntegerField(default=0)
    dwell_10 = models.IntegerField(default=0)
    dwell_11 = models.IntegerField(default=0)
    dwell_12 = models.IntegerField(default=0)
    dwell_13 = models.IntegerField(default=0)
    dwell_14 = models.IntegerField(default=0)
    dwell_15 = models.IntegerField(default=0)
    dwell_16 = models.IntegerField(default=0)
    dwell_17 = models.IntegerField(default=0)
    dwell_18 = models.IntegerField(default=0)
    dwell_19 = models.IntegerField(default=0)
    label_edit_correction = models.IntegerField(default=0)
    label_edit_rewrite = models.IntegerField(default=0)
    label_regenerate_then_action = models.IntegerField(default=0)
    label_copy_accept = models.IntegerField(default=0)
    label_share_accept = models.IntegerField(default=0)
    label_session_completed = models.IntegerField(default=0)
    label_session_abandoned = models.IntegerField(default=0)
    label_retry_chain = models.IntegerField(default=0)
    label_explicit_rating = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # Also the page's index: a project's dimension over a date range.
            models.UniqueConstraint(
                fields=["project", "dimension", "day", "group_key"], name="signal_rollup_unique"
            )
        ]
        indexes = [
            # The days of a few picked groups. No counts in it: derivation's updates of a
            # row change no indexed column, so PostgreSQL updates it in place (HOT) when
            # its page has room (the table's fillfactor is 70, migration 0015).
            models.Index(
                fields=["project", "dimension", "group_key", "day"],
                name="signal_rollup_group_day",
            )
        ]

    def __str__(self) -> str:
        return f"{self.dimension}={self.group_key} {self.day}"
