"""An export built by a real Celery worker, started and downloaded over the API."""

from __future__ import annotations

import pytest

from tests.conftest import token_client
from tests.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_worker_builds_an_export_started_over_the_api(worker, world, mel):
    client = token_client(mel)
    response = client.post(
        "/api/v1/exports",
        {"project": "acme", "format": "dpo", "file_format": "parquet"},
        format="json",
    )
    assert response.status_code == 202
    url = f"/api/v1/exports/{response.json()['id']}"
    body = wait_until(
        lambda: (b := client.get(url).json())["status"] in ("done", "failed") and b,
        what="the export to finish",
    )
    assert body["status"] == "done", body
    assert body["manifest"]["rows"] == {"train": 3, "eval": 1}
    download = client.get(f"{url}/download")
    assert download.status_code == 200
    assert b"".join(download.streaming_content)[:4] == b"PAR1"  # a Parquet file
