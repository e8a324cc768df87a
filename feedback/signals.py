"""Signal dashboards' data: per-day rollups of the derived signals, by model, product
feature and prompt pattern (docs/signals.md).

Every derived generation has a *contribution*: its day (UTC date of the generation), its
groups (model, feature, pattern) and a 0/1 count per signal, its reading-time bin and its
labels per rule (`SignalContribution`). A rollup row (`SignalRollup`) is the sum of the
contributions of one (project, dimension, group, day). Derivation keeps both in step, in
its own transaction: for the generations whose contribution changed it writes the new
contributions and adds (new - old) to the rollups, one upsert statement each per chunk
(`rollups_apply`), so late events and re-derivation never count twice and a session
re-derived unchanged writes nothing. The page reads rollups only.

Sessions, completions and abandonments count on a session's last generation (the answer
the user ended on), so the groups of a dimension always add up to the project's totals.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import cache, lru_cache
from typing import Any, Final

from django.db import connection, transaction
from django.db.models import Sum

from feedback import derive_io
from feedback.models import (
    DWELL_BINS,
    FEATURE_KEY_PATTERN,
    SIGNAL_COUNTS,
    SIGNAL_LABEL_BITS,
    SIGNAL_LABEL_SHIFT,
    SIGNAL_RULES,
    Label,
    PromptPattern,
    RoutingPolicy,
    Session,
    SignalContribution,
    SignalRollup,
)
from tenancy.models import Project

BUCKETS: Final = ("day", "week", "all")
DIMENSIONS: Final = ("model", "feature", "pattern")
# The metadata key a product may send to name the prompt template of a generation; without
# it a generation's pattern is the first words of its last user message.
PATTERN_METADATA_KEY: Final = derive_io.TEMPLATE_KEY
PATTERN_WORDS: Final = 3
PATTERN_SCAN: Final = 300  # characters of the prompt the words are looked for in
GROUP_MAX: Final = derive_io.GROUP_MAX
NAME_MAX: Final = 200
NO_GROUP_LABEL: Final = "(none)"
DWELL_FIRST_EDGE_MS: Final = 250
DWELL_MAX_MS: Final = 86_400_000
DWELL_COLUMNS: Final = tuple(f"dwell_{k}" for k in range(DWELL_BINS))
LABEL_COLUMNS: Final = tuple(f"label_{rule}" for rule in SIGNAL_RULES)
# A rollup row's values, in order; a contribution adds 1 to generations.
ROLLUP_VALUES: Final = ("generations", *SIGNAL_COUNTS, *DWELL_COLUMNS, *LABEL_COLUMNS)
ROLLUP_KEY: Final = ("project", "dimension", "day", "group_key")
# A contribution row, in order (`SignalContribution`'s columns).
CONTRIBUTION_COLUMNS: Final = (
    "generation",
    "project",
    "day",
    "model",
    "feature",
    "pattern",
    "counts",
    "dwell_bin",
)
LABEL_SHIFT: Final = SIGNAL_LABEL_SHIFT
LABEL_BITS: Final = SIGNAL_LABEL_BITS
LABEL_MAX: Final = 2**LABEL_BITS - 1  # labels of one rule counted on one generation
_RULE_INDEX: Final = {rule: i for i, rule in enumerate(SIGNAL_RULES)}
_WORDS: Final = re.compile(r"[^\W\d_]+")
# Rates: (key, numerator, denominator).
RATES: Final = (
    ("edit_rate", "edited", "generations"),
    ("regenerate_rate", "regenerated", "generations"),
    ("copy_rate", "copied", "generations"),
    ("share_rate", "shared", "generations"),
    ("thumbs_rate", "thumbs", "generations"),
    ("completion_rate", "completed", "sessions"),
    ("abandon_rate", "abandoned", "sessions"),
    ("thumbs_up_share", "thumbs_up", "thumbs"),
)

Contribution = tuple[Any, ...]  # a row in CONTRIBUTION_COLUMNS order


# -- Grouping and counting (pure) -----------------------------------------------------


def dwell_bin(dwell_ms: float) -> int | None:
    """The reading-time bin of `dwell_ms`, None when not read at all."""
    if not dwell_ms or dwell_ms <= 0:
        return None
    return min(DWELL_BINS - 1, (int(dwell_ms) // DWELL_FIRST_EDGE_MS).bit_length())


def _bin_edges(k: int) -> tuple[float, float]:
    low = 0.0 if k == 0 else DWELL_FIRST_EDGE_MS * 2 ** (k - 1)
    high = DWELL_MAX_MS if k == DWELL_BINS - 1 else DWELL_FIRST_EDGE_MS * 2**k
    return low, float(high)


def median_dwell(histogram: Sequence[int]) -> int | None:
    """The median reading time (ms) of a summed histogram, interpolated within its bin
    (linearly in the first bin, geometrically in the log-spaced others)."""
    total = sum(histogram)
    if total <= 0:
        return None
    half = total / 2
    seen = 0
    for k, count in enumerate(histogram):
        if count > 0 and seen + count >= half:
            fraction = (half - seen) / count
            low, high = _bin_edges(k)
            if low <= 0:
                return round(high * fraction)
            return round(low * (high / low) ** fraction)
        seen += count
    return None  # unreachable: the counts add up to total


def pattern_of(messages: Any, template: Any = None) -> str:
    """A generation's prompt pattern: "tpl:<template>" when the product named the prompt
    template (metadata `prompt_template`), else "txt:" and the first PATTERN_WORDS words
    of the last user message, lowercased, letters only (digits, punctuation, markup
    dropped); "" for a prompt without words."""
    if isinstance(template, str) and template.strip():
        return f"tpl:{template.strip()}"[:GROUP_MAX]
    text = ""
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                text = _content_text(message.get("content"))
                break
    return _fingerprint(text[:PATTERN_SCAN])


@lru_cache(maxsize=4096)
def _fingerprint(text: str) -> str:
    """`pattern_of` a prompt's text; cached: a regenerate chain repeats its prompt."""
    words: list[str] = []
    for match in _WORDS.finditer(unicodedata.normalize("NFKC", text).lower()):
        words.append(match.group())
        if len(words) == PATTERN_WORDS:
            break
    return f"txt:{' '.join(words)}"[:GROUP_MAX] if words else ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def pattern_label(key: str) -> str:
    """What a pattern without a name shows: its template, or its words followed by "…"."""
    if key.startswith("tpl:"):
        return key[4:]
    if key.startswith("txt:"):
        return f"{key[4:]} …"
    return key or NO_GROUP_LABEL


def contribution(
    *,
    generation_id: int,
    project_id: int,
    created_at: datetime,
    model: str,
    feature: str,
    pattern: str,
    signals: Mapping[str, Any],
    rules: Iterable[str],
    last_in_session: bool,
    outcome: str,
) -> Contribution:
    """One generation's contribution from its stored signals (`Generation.signals`), the
    rules of its active labels, and its session's outcome when it is the session's last
    generation. Signals stored before `edit_kind` existed fall back on the edit labels."""
    labels: dict[int, int] = {}
    for rule in rules:
        j = _RULE_INDEX.get(rule)
        if j is not None:
            labels[j] = labels.get(j, 0) + 1
    kind = signals.get("edit_kind")
    if not isinstance(kind, str):
        if not signals.get("edit_ratio"):
            kind = "none"
        elif _RULE_INDEX["edit_correction"] in labels:
            kind = "correction"
        elif _RULE_INDEX["edit_rewrite"] in labels:
            kind = "rewrite"
        else:
            kind = "cosmetic"
    packed = _EDIT_BITS.get(kind, _EDITED | _BIT["edit_cosmetic"]) if kind != "none" else 0
    if last_in_session:
        packed |= _BIT["sessions"] | _OUTCOME_BITS.get(outcome, 0)
    for name in ("regenerated", "copied", "shared"):
        if signals.get(name):
            packed |= _BIT[name]
    rating = signals.get("rating")
    if isinstance(rating, int | float) and not isinstance(rating, bool):
        packed |= _BIT["thumbs"] | (_BIT["thumbs_up"] if rating > 0 else 0)
    for j, n in labels.items():
        packed |= min(n, LABEL_MAX) << (LABEL_SHIFT + LABEL_BITS * j)
    if _RULE_INDEX["retry_chain"] in labels:  # one flag per chain, on its root
        packed |= _BIT["high_retry"]
    dwell = signals.get("dwell_ms")
    return (
        generation_id,
        project_id,
        _utc_day(created_at),
        model[:GROUP_MAX],
        feature,
        pattern,
        packed,
        dwell_bin(dwell) if isinstance(dwell, int | float) else None,
    )


_BIT: Final = {name: 1 << i for i, name in enumerate(SIGNAL_COUNTS)}
_EDITED: Final = _BIT["edited"]
# An edit's kind (feedback/edits.py): trims and notes count as cosmetic.
_EDIT_BITS: Final = {
    "correction": _EDITED | _BIT["edit_correction"],
    "rewrite": _EDITED | _BIT["edit_rewrite"],
    **{kind: _EDITED | _BIT["edit_cosmetic"] for kind in ("cosmetic", "trim", "note")},
}
_OUTCOME_BITS: Final = {
    Session.Outcome.COMPLETED.value: _BIT["completed"],
    Session.Outcome.ABANDONED.value: _BIT["abandoned"],
}


def _utc_day(moment: datetime) -> date:
    offset = moment.utcoffset()
    return (moment - offset).date() if offset else moment.date()


@cache
def _vector(packed: int, bin_: int | None) -> tuple[tuple[int, int], ...]:
    """The rollup values a contribution of these packed counts and reading-time bin adds,
    as (index in ROLLUP_VALUES, value) of those not 0. Few combinations occur: cached."""
    dwell = [0] * DWELL_BINS
    if bin_ is not None:
        dwell[bin_] = 1
    values = (
        1,
        *((packed >> bit) & 1 for bit in range(len(SIGNAL_COUNTS))),
        *dwell,
        *((packed >> (LABEL_SHIFT + LABEL_BITS * j)) & LABEL_MAX for j in range(len(SIGNAL_RULES))),
    )
    return tuple((i, v) for i, v in enumerate(values) if v)


def rollup_deltas(
    old: Mapping[int, Contribution], new: Iterable[Contribution]
) -> tuple[list[Contribution], list[tuple[Any, ...]]]:
    """The contributions that changed (`new` rows unlike the stored `old` ones, by
    generation id), and what the rollups must add: one row per (project, dimension, day,
    group) in ROLLUP_KEY + ROLLUP_VALUES order, sorted (concurrent derivations lock rollup
    rows in the same order), rows that add nothing left out."""
    changed: list[Contribution] = []
    deltas: dict[tuple[Any, ...], list[int]] = {}
    for row in new:
        before = old.get(row[0])
        if before == row:
            continue
        changed.append(row)
        for sign, side in ((-1, before), (1, row)):
            if side is None:
                continue
            vector = _vector(side[6], side[7])
            project_id, day = side[1], side[2]
            for dimension, group in zip(DIMENSIONS, side[3:6], strict=True):
                key = (project_id, dimension, day, group)
                total = deltas.get(key)
                if total is None:
                    total = deltas[key] = [0] * len(ROLLUP_VALUES)
                for i, v in vector:
                    total[i] += sign * v
    rows = [(*key, *values) for key, values in sorted(deltas.items()) if any(values)]
    return changed, rows


# -- Reading ---------------------------------------------------------------------------


def _check_choice(name: str, value: Any, allowed: tuple[str, ...], *, optional: bool) -> None:
    if optional and value is None:
        return
    if value not in allowed:
        raise ValueError(f"{name}: must be one of {', '.join(allowed)}, not {value!r}.")


def signal_rows(
    project: Project,
    *,
    bucket: str = "day",
    by: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    groups: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The signals per (bucket, group), sorted by bucket then group, from the rollups only
    (one aggregate query, plus one for pattern names). docs/signals.md lists the keys.

    `bucket`: "day", "week" (starting Monday) or "all" (one bucket, dated `date_from` or
    the first day with data). `by`: a dimension, or None for the project as one group
    (""). `groups`: only these groups of `by`. Raises ValueError naming a bad argument."""
    _check_choice("bucket", bucket, BUCKETS, optional=False)
    _check_choice("by", by, DIMENSIONS, optional=True)
    for name, value in (("date_from", date_from), ("date_to", date_to)):
        if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
            raise ValueError(f"{name}: must be a date.")
    if groups is not None:
        if by is None:
            raise ValueError("groups: needs by.")
        if isinstance(groups, str) or not all(isinstance(g, str) for g in groups):
            raise ValueError("groups: must be a list of strings.")
    rows = _aggregate(project.pk, bucket, by, date_from, date_to, groups)
    names = _pattern_names(project) if by == "pattern" else {}
    if bucket == "all":
        # One bucket: every group dated from the range start, else the first day with data.
        first = date_from or min((row[0] for row in rows), default=None)
        rows = [(first, *row[1:]) for row in rows]
    return [_figures(row, _label(by, row[1], names)) for row in rows]


def _aggregate(
    project_id: int,
    bucket: str,
    by: str | None,
    date_from: date | None,
    date_to: date | None,
    groups: Sequence[str] | None,
) -> list[tuple[Any, ...]]:
    """Rows of (bucket start, group, *ROLLUP_VALUES), sorted: one query over the rollups
    (daily rows of a dimension are read as they are, without grouping)."""
    postgres = connection.vendor == "postgresql"
    quote = connection.ops.quote_name
    where = ["project_id = %s", "dimension = %s", "generations > 0"]
    params: list[Any] = [project_id, by or "model"]
    if date_from is not None:
        where.append("day >= %s")
        params.append(date_from)
    if date_to is not None:
        where.append("day <= %s")
        params.append(date_to)
    if groups is not None:
        if not groups:
            return []
        if postgres:
            where.append("group_key = ANY(%s)")
            params.append(list(groups))
        else:
            where.append(f"group_key IN ({', '.join(['%s'] * len(groups))})")
            params.extend(groups)
    if bucket == "day":
        start = "day"
    elif bucket == "week":  # the Monday of the day's week
        start = (
            "CAST(date_trunc('week', day) AS date)"
            if postgres
            else "date(day, '-' || ((CAST(strftime('%%w', day) AS integer) + 6) %% 7) || ' days')"
        )
    else:
        start = "MIN(day)"
    group = "group_key" if by is not None else "''"
    table = quote(SignalRollup._meta.db_table)
    condition = " AND ".join(where)
    if bucket == "day" and by is not None:  # one rollup row per (day, group) already
        values = ", ".join(quote(name) for name in ROLLUP_VALUES)
        sql = f"SELECT day, group_key, {values} FROM {table} WHERE {condition} ORDER BY 1, 2"  # noqa: S608 - names from the model
    else:
        sums = ", ".join(f"SUM({quote(name)})" for name in ROLLUP_VALUES)
        keys = [str(i) for i, used in ((1, bucket != "all"), (2, by is not None)) if used]
        tail = f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else ""
        sql = f"SELECT {start}, {group}, {sums} FROM {table} WHERE {condition}{tail}"  # noqa: S608 - names from the model
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if rows and rows[0][2] is None:  # the one row of an aggregate over no rows
        return []
    if not postgres:  # SQLite hands computed dates over as text
        rows = [
            (date.fromisoformat(row[0]) if isinstance(row[0], str) else row[0], *row[1:])
            for row in rows
        ]
    return rows


_COUNT_NAMES: Final = ("generations", *SIGNAL_COUNTS)
_N_COUNTS: Final = len(_COUNT_NAMES)
_INDEX: Final = {name: i for i, name in enumerate(ROLLUP_VALUES)}
_RATE_INDEXES: Final = tuple((key, _INDEX[n], _INDEX[d]) for key, n, d in RATES)
_DWELL_SLICE: Final = slice(_INDEX["dwell_0"], _INDEX["dwell_0"] + DWELL_BINS)
_LABEL_AT: Final = _INDEX[LABEL_COLUMNS[0]]


def _figures(row: tuple[Any, ...], label: str) -> dict[str, Any]:
    """One output dict of an aggregate row (bucket start, group, *ROLLUP_VALUES)."""
    values = [v or 0 for v in row[2:]]
    figures: dict[str, Any] = {"bucket": row[0], "group": row[1], "group_label": label}
    figures.update(zip(_COUNT_NAMES, values[:_N_COUNTS], strict=True))
    figures["labels"] = {
        rule: n for rule, n in zip(SIGNAL_RULES, values[_LABEL_AT:], strict=True) if n
    }
    for key, numerator, denominator in _RATE_INDEXES:
        figures[key] = values[numerator] / values[denominator] if values[denominator] else None
    figures["median_dwell_ms"] = median_dwell(values[_DWELL_SLICE])
    return figures


def _pattern_names(project: Project) -> dict[str, str]:
    return dict(PromptPattern.objects.filter(project=project).values_list("key", "name"))


def _label(by: str | None, group: str, names: Mapping[str, str]) -> str:
    if by is None:
        return ""
    if by == "pattern":
        return names.get(group) or pattern_label(group)
    return group or NO_GROUP_LABEL


def signal_groups(project: Project, by: str) -> list[tuple[str, str, int]]:
    """(group, label, generations) of dimension `by` over all time, most generations first."""
    _check_choice("by", by, DIMENSIONS, optional=False)
    totals = (
        SignalRollup.objects.filter(project=project, dimension=by)
        .values("group_key")
        .annotate(n=Sum("generations"))
        .filter(n__gt=0)
        .order_by("-n", "group_key")
        .values_list("group_key", "n")
    )
    names = _pattern_names(project) if by == "pattern" else {}
    return [(group, _label(by, group, names), n) for group, n in totals]


# -- Writing ---------------------------------------------------------------------------


def rollups_apply(old: Mapping[int, Contribution], new: Iterable[Contribution]) -> int:
    """Store the `new` contributions that differ from the `old` ones (stored, by
    generation id) and move the rollups by the difference; how many changed. Call inside
    the transaction that holds the sessions' locks (derivation's)."""
    changed, deltas = rollup_deltas(old, new)
    derive_io.signal_contributions_write(changed)
    derive_io.signal_rollups_add(deltas)
    return len(changed)


REBUILD_CHUNK = 500


def rebuild_rollups(project: Project) -> None:
    """Recompute a project's contributions from its derived signals and labels, then its
    rollups from the contributions (repair, backfill after an upgrade, a new feature key).

    Contributions are rewritten a chunk of sessions at a time, each chunk in a transaction
    holding its sessions' locks (derivation skips them meanwhile; ingestion waits at most
    one chunk). The rollups are then replaced in one statement pair: a derivation that
    commits meanwhile adds its difference to the rebuilt rows, so nothing is lost."""
    session_ids = list(
        Session.objects.filter(project=project, derived_at__isnull=False)
        .order_by("id")
        .values_list("id", flat=True)
    )
    for start in range(0, len(session_ids), REBUILD_CHUNK):
        with transaction.atomic():
            chunk = list(
                Session.objects.filter(pk__in=session_ids[start : start + REBUILD_CHUNK])
                .select_for_update()
                .order_by("id")
                .values_list("id", "outcome")
            )
            _contributions_rebuild(project, dict(chunk))
    with transaction.atomic():
        derive_io.signal_rollups_rebuild(project.pk)


def _contributions_rebuild(project: Project, outcomes: dict[int, str]) -> None:
    ids = list(outcomes)
    generations = derive_io.generations_of(ids)
    rules: dict[int, list[str]] = {}
    for generation_id, rule in Label.objects.filter(session_id__in=ids, active=True).values_list(
        "generation_id", "rule"
    ):
        rules.setdefault(generation_id, []).append(rule)
    rows: list[Contribution] = []
    for session_id, gens in generations.items():
        derived = [g for g in gens if g.signals not in ("{}", {}, None)]
        if not derived:
            continue
        last = max(derived, key=lambda g: (g.created_at, g.external_id))
        for g in derived:
            signals = json.loads(g.signals) if isinstance(g.signals, str) else g.signals
            rows.append(
                contribution(
                    generation_id=g.id,
                    project_id=project.pk,
                    created_at=g.created_at,
                    model=g.model,
                    feature=g.feature,
                    pattern=pattern_of(g.input, g.template),
                    signals=signals,
                    rules=rules.get(g.id, ()),
                    last_in_session=g is last,
                    outcome=outcomes[session_id],
                )
            )
    SignalContribution.objects.filter(
        generation_id__in=[g.id for gens in generations.values() for g in gens]
    ).delete()
    derive_io.signal_contributions_write(rows)


def set_feature_key(project: Project, key: str) -> None:
    """Group the project's signals (and measured precision) by generation metadata `key`,
    and rebuild its rollups accordingly. Raises ValueError naming `key` when unusable."""
    if not isinstance(key, str) or not re.fullmatch(FEATURE_KEY_PATTERN, key):
        raise ValueError("key: 1 to 64 letters, digits, _ and -, starting with a letter or _.")
    RoutingPolicy.objects.filter(project=project).update(quality_feature_key=key)
    rebuild_rollups(project)


def name_pattern(project: Project, key: str, name: str) -> None:
    """Name a prompt pattern of the project; an empty name removes the name."""
    if not isinstance(key, str) or not key or len(key) > GROUP_MAX or "\x00" in key:
        raise ValueError(f"key: a pattern key of 1 to {GROUP_MAX} characters.")
    if not isinstance(name, str) or len(name) > NAME_MAX or "\x00" in name:
        raise ValueError(f"name: at most {NAME_MAX} characters.")
    name = name.strip()
    if not name:
        PromptPattern.objects.filter(project=project, key=key).delete()
        return
    PromptPattern.objects.update_or_create(project=project, key=key, defaults={"name": name})
