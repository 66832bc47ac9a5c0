"""Database error texts never quote the statement's parameters (a notification's config holds
secrets, and error texts reach logs)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError

from notifier.models import Notification


def test_an_error_text_does_not_quote_the_parameters(factory):
    secret = "whsec_do-not-log-me-0123456789"
    with factory() as session, pytest.raises(SQLAlchemyError) as caught:
        session.execute(insert(Notification).values(
            uuid="x" * 40, repository="a/b", event="repo_push", method="webhook",  # too long
            config={"url": "http://127.0.0.1:9/", "secret": secret}, event_config={},
            number_of_failures=0, enabled=True))
        session.execute(insert(Notification).values(
            uuid="x" * 40, repository="a/b", event="repo_push", method="webhook",
            config={"secret": secret}, event_config={}, number_of_failures=0, enabled=True))

    assert secret not in str(caught.value)
    assert "hidden due to hide_parameters" in str(caught.value)
