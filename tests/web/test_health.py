"""/healthz: public, JSON, and honest about the database."""

from __future__ import annotations

import daemon


def test_healthy(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    assert response.get_json() == {"status": "ok", "version": daemon.__version__, "database": "ok"}


def test_database_gone_is_503(client, store) -> None:
    store.close()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error"
    assert body["database"] and body["database"] != "ok"
    assert str(store.path) not in response.get_data(as_text=True)
