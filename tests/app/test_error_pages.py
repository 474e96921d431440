"""Pages answer a wrong link in clinical words with a way back; the API keeps problem+json;
the favicon is served without a login."""

from __future__ import annotations


def test_unknown_patient_and_page_are_a_404_page_with_the_way_back(app, log_in):
    client, _ = log_in(app, "dr-e")
    for path in ("/patients/p-000000000000", "/no-such-page"):
        resp = client.get(path)
        assert resp.status_code == 404 and resp.mimetype == "text/html"
        html = resp.get_data(as_text=True)
        assert "Page not found" in html and "no such patient or page" in html
        assert 'href="/"' in html and "Back to the ward overview" in html
        assert "Traceback" not in html


def test_wrong_method_on_a_page_is_a_405_page(app, log_in):
    resp = log_in(app, "dr-e")[0].get("/logout")  # a form's POST target, opened as a link
    assert resp.status_code == 405 and "Not possible here" in resp.get_data(as_text=True)


def test_the_api_still_answers_problem_json(client, auth_headers):
    resp = client.get("/api/v1/patients/p-000000000000", headers=auth_headers)
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    resp = client.get("/api/v1/no-such-thing", headers=auth_headers)
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"


def test_favicon_without_login(client):
    resp = client.get("/favicon.ico")
    assert resp.status_code == 301 and resp.location.endswith("favicon.svg")
    icon = client.get(resp.location)
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    login = client.get("/login").get_data(as_text=True)
    assert 'rel="icon"' in login and "favicon.svg" in login
