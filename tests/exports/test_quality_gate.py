"""Human ground truth in every training export: the manifest's quality object, the dataset
card's Quality section, and the policy gate (min_human_share, target_precision) with its
way out, allow_below_policy, through the service, the API, the form and the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from exports import services
from exports.models import ExportJob
from exports.policy import below_policy_reasons
from exports.tasks import build_export
from feedback.models import RoutingPolicy
from tests.conftest import token_client

pytestmark = pytest.mark.django_db

# The world's train split per format (tests/exports/conftest.py): s1 (edit pair, auto-
# accepted), s2 (regenerate pair, auto-accepted), s3 (edit pair, accepted by review); KTO
# and SFT also take s2's copy positive (auto-accepted). s5 was rejected, s6 is held out,
# s4 disputed, s7 and s8 are not training labels.
TRAIN = {
    "dpo": ["s1", "s2", "s3"],
    "openai_preference": ["s1", "s2", "s3"],
    "kto": ["s1", "s2", "s2_copy", "s3"],
    "sft": ["s1", "s2", "s2_copy", "s3"],
}
HUMAN = ["s3"]
BOTH_REASONS = [
    "human-verified 33.33% of rows < 50%",
    "estimated precision 0.7333 < target 0.95",
]
BOTH_MESSAGE = (
    "Below the project's policy: human-verified 33.33% of rows < 50%; estimated precision "
    "0.7333 < target 0.95. Ask with allow_below_policy to build it anyway."
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def build(project, fmt: str = "dpo", **fields) -> ExportJob:
    job = ExportJob.objects.create(
        project=project,
        format=fmt,
        file_format=fields.pop("file_format", "jsonl"),
        filters=fields.pop("filters", {}),
        status="running",
        attempts=1,
        **fields,
    )
    return services.export_build(job=job)


def set_policy(project, **fields) -> None:
    RoutingPolicy.objects.filter(project=project).update(**fields)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("fmt", sorted(TRAIN))
def test_manifest_quality_matches_the_world_for_every_format(world, project, media, fmt):
    job = build(project, fmt)
    assert job.status == "done"
    quality = json.loads((Path(media) / job.directory / "manifest.json").read_text())["quality"]
    assert quality == job.manifest["quality"]
    names = TRAIN[fmt]
    labels = [world.labels[name] for name in names]
    assert quality["rows"] == len(names) == job.manifest["labels"]["train"]
    assert quality["human_rows"] == len(HUMAN)
    assert quality["human_share"] == round(len(HUMAN) / len(names), 4)
    mix: dict[str, int] = {}
    for label in labels:
        mix[label.rule] = mix.get(label.rule, 0) + 1
    assert quality["rule_mix"] == mix
    # No verdict falls in the cells of the auto-accepted labels (their rule x band): each
    # counts at its rule's heuristic, interval 0..1; the reviewed one counts as right.
    auto = [
        label.rule_confidence or label.confidence
        for label in labels
        if label.pk != world.labels["s3"].pk
    ]
    assert quality["precision"] == {
        "estimate": round((1 + sum(auto)) / len(names), 4),
        "low": round(1 / len(names), 4),
        "high": 1.0,
    }
    assert (quality["target"], quality["min_human_share"]) == (0.5, 0.1)  # the world's policy
    assert quality["allowed_below_policy"] is False and quality["below_policy"] == []
    assert quality["warnings"] == []
    card = (Path(media) / job.directory / "README.md").read_text()
    assert "## Quality" in card
    assert f"Human-verified: 1 of {len(names)} training rows" in card
    assert "target 0.50" in card and "below the project's policy" not in card


def test_pairs_people_judged_directly_count_as_human_verified(world, review_pairs, project):
    quality = build(project, "dpo").manifest["quality"]
    # s1, s2, s3 and the one agreed pair in training (one is held out, one disputed).
    assert (quality["rows"], quality["human_rows"], quality["human_share"]) == (4, 2, 0.5)


def test_below_policy_export_fails_naming_both_figures_and_writes_no_files(
    world_at_default_policy, project, media, mel
):
    set_policy(project, min_human_share=0.5)
    job = build(project, "dpo")
    assert (job.status, job.error) == ("failed", BOTH_MESSAGE)
    stored = ExportJob.objects.get(pk=job.pk)
    assert (stored.status, stored.error, stored.manifest) == ("failed", BOTH_MESSAGE, {})
    assert stored.finished_at is not None
    assert not (Path(media) / job.directory).exists()
    body = token_client(mel).get(f"/api/v1/exports/{job.pk}").json()
    assert (body["status"], body["error"]) == ("failed", BOTH_MESSAGE)
    assert "manifest" not in body and "download" not in body
    html = logged_in(mel).get(f"/exports/{job.pk}/").content.decode()
    assert "The export failed." in html
    assert "Below the project&#x27;s policy: human-verified 33.33% of rows &lt; 50%" in html


def test_default_policy_fails_the_world_on_precision_alone(world_at_default_policy, project):
    job = build(project, "kto")
    assert job.status == "failed"
    assert job.error == (
        "Below the project's policy: estimated precision 0.75 < target 0.95. "
        "Ask with allow_below_policy to build it anyway."
    )


def test_allow_below_policy_builds_and_the_manifest_says_so(
    world_at_default_policy, project, media, mel
):
    set_policy(project, min_human_share=0.5)
    job = build(project, "dpo", allow_below_policy=True)
    assert (job.status, job.error) == ("done", "")
    quality = job.manifest["quality"]
    assert quality["allowed_below_policy"] is True
    assert quality["below_policy"] == BOTH_REASONS
    assert (quality["target"], quality["min_human_share"]) == (0.95, 0.5)
    directory = Path(media) / job.directory
    assert json.loads((directory / "manifest.json").read_text())["quality"] == quality
    assert len((directory / "train.jsonl").read_text().splitlines()) == 3
    card = (directory / "README.md").read_text()
    assert "Built below the project's policy on request**: " + "; ".join(BOTH_REASONS) in card
    html = logged_in(mel).get(f"/exports/{job.pk}/").content.decode()
    assert (
        "Built below the project's policy on request:</strong> "
        "human-verified 33.33% of rows &lt; 50%; estimated precision 0.7333 &lt; target 0.95."
    ) in html


def test_allowed_export_that_meets_the_policy_lists_no_reasons(world, project):
    quality = build(project, "dpo", allow_below_policy=True).manifest["quality"]
    assert quality["allowed_below_policy"] is True and quality["below_policy"] == []


def test_export_of_zero_rows_is_not_below_policy(world_at_default_policy, project, media):
    job = build(project, "dpo", filters={"since": "2999-01-01"})
    assert job.status == "done" and job.rows == 0
    quality = job.manifest["quality"]
    assert (quality["rows"], quality["human_share"], quality["below_policy"]) == (0, None, [])
    assert quality["precision"] == {"estimate": None, "low": None, "high": None}
    card = (Path(media) / job.directory / "README.md").read_text()
    assert "No training rows: nothing to measure." in card


def test_api_takes_allow_below_policy_and_the_worker_honours_it(
    world_at_default_policy, project, mel
):
    client = token_client(mel)
    ids = {}
    for allow in (True, False):
        body = {"project": "acme", "format": "dpo", "allow_below_policy": allow}
        response = client.post("/api/v1/exports", body, format="json")
        assert response.status_code == 202
        ids[allow] = response.json()["id"]
        assert ExportJob.objects.get(pk=ids[allow]).allow_below_policy is allow
    omitted = client.post("/api/v1/exports", {"project": "acme", "format": "dpo"}, format="json")
    assert ExportJob.objects.get(pk=omitted.json()["id"]).allow_below_policy is False
    assert build_export(ids[True]) == "done"
    assert build_export(ids[False]) == "failed"
    allowed = client.get(f"/api/v1/exports/{ids[True]}").json()
    assert allowed["allow_below_policy"] is True
    assert allowed["manifest"]["quality"]["below_policy"] == [
        "estimated precision 0.7333 < target 0.95"
    ]
    refused = client.get(f"/api/v1/exports/{ids[False]}").json()
    assert refused["allow_below_policy"] is False
    assert refused["error"].startswith("Below the project's policy: estimated precision 0.7333")


@pytest.mark.parametrize("value", ["yes", 1, "1", None, ["true"]])
def test_api_refuses_allow_below_policy_that_is_not_a_boolean(project, mel, value):
    body = {"project": "acme", "format": "dpo", "allow_below_policy": value}
    response = token_client(mel).post("/api/v1/exports", body, format="json")
    assert response.status_code == 400
    assert "allow_below_policy" in response.json()
    assert not ExportJob.objects.exists()


def test_api_schema_types_allow_below_policy_as_a_boolean():
    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    request = next(s for name, s in schemas.items() if name.startswith("ExportInput"))
    assert request["properties"]["allow_below_policy"]["type"] == "boolean"
    assert "allow_below_policy" not in request.get("required", [])
    assert schemas["ExportJob"]["properties"]["allow_below_policy"]["type"] == "boolean"


def test_form_passes_allow_below_policy_through(world_at_default_policy, project, mel):
    client = logged_in(mel)
    page = client.get("/exports/").content.decode()
    assert 'type="checkbox" name="allow_below_policy"' in page
    form = {"project": "acme", "format": "dpo", "file_format": "jsonl", "style": "standard"}
    assert client.post("/exports/", {**form, "allow_below_policy": "on"}).status_code == 302
    assert client.post("/exports/", form).status_code == 302
    jobs = list(ExportJob.objects.order_by("pk").values_list("allow_below_policy", flat=True))
    assert jobs == [True, False]


def test_command_fails_below_policy_and_builds_with_allow_below_policy(
    world_at_default_policy, project, tmp_path, capsys
):
    out = tmp_path / "dpo.jsonl"
    args = ["export", "--project", "acme", "--format", "dpo", "--out", str(out)]
    with pytest.raises(CommandError, match=r"Below the project's policy: estimated precision"):
        call_command(*args)
    assert not out.exists()
    assert ExportJob.objects.get().status == "failed"
    call_command(*args, "--allow-below-policy")
    assert len(out.read_text().splitlines()) == 3
    manifest = json.loads((tmp_path / "dpo.manifest.json").read_text())
    assert manifest["quality"]["allowed_below_policy"] is True
    assert manifest["quality"]["below_policy"] == ["estimated precision 0.7333 < target 0.95"]
    assert "Built below the project's policy: estimated precision 0.7333" in capsys.readouterr().err


def quality(rows: int, share: float | None, estimate: float | None) -> dict:
    return {
        "rows": rows,
        "human_share": share,
        "min_human_share": 0.1,
        "precision": {"estimate": estimate},
        "target": 0.95,
    }


@pytest.mark.parametrize(
    ("figures", "reasons"),
    [
        (quality(10, 0.1, 0.95), []),  # at the thresholds: meets them
        (
            quality(2000, 0.0995, 0.9496),
            ["human-verified 9.95% of rows < 10%", "estimated precision 0.9496 < target 0.95"],
        ),
        (
            quality(10, 0.04, 0.9),
            ["human-verified 4% of rows < 10%", "estimated precision 0.90 < target 0.95"],
        ),
        (quality(0, None, None), []),  # nothing to judge
    ],
)
def test_reasons_never_print_a_figure_as_equal_to_its_threshold(figures, reasons):
    assert below_policy_reasons(figures) == reasons
