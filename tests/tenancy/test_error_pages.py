"""403 and 404 pages say why in words, and another project's page reads as not found."""

from __future__ import annotations

from review.models import Queue


def test_404_says_why_without_naming_the_project(client, project, owen):
    queue = Queue.objects.create(project=project, name="Secret queue")
    client.force_login(owen)
    response = client.get(f"/review/q/{queue.pk}/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "<h1>Not found</h1>" in page and "No such queue." in page
    assert "belongs to a project you are not a member of" in page
    assert "Secret" not in page and "Acme" not in page
    assert 'class="brand"' in page  # the site's own page (base.html), not the bare default


def test_404_for_an_unknown_address_says_there_is_no_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "There is no page at this address." in response.content.decode()


def test_403_says_which_role_is_needed(client, project, carol):
    client.force_login(carol)  # a lead, not an ML engineer: may not export
    response = client.get("/exports/?project=acme")
    assert response.status_code == 403
    page = response.content.decode()
    assert "<h1>Not allowed</h1>" in page
    assert "You may not export from this project (ML or admin role needed)." in page


def test_api_404_stays_json(client, carol):
    client.force_login(carol)
    response = client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
