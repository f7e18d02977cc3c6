"""core.redact: what services log about a failure they survive names the bug, never the data."""

from __future__ import annotations

import psycopg
import pytest

from core.redact import summary, where


def test_a_database_refusal_is_summarised_without_the_row_it_quotes(db: psycopg.Connection) -> None:
    db.execute("CREATE TEMP TABLE t (name text CHECK (name <> 'Oskar Lindqvist 19421212-1234'))")
    with pytest.raises(psycopg.errors.CheckViolation) as caught:
        db.execute("INSERT INTO t VALUES ('Oskar Lindqvist 19421212-1234')")
    assert "Oskar" in str(caught.value)  # the text itself carries the row ...
    text = summary(caught.value)
    assert "Oskar" not in text and "1942" not in text  # ... the summary never does
    assert text.startswith("CheckViolation (SQLSTATE 23514) at psycopg.")


def test_where_names_the_innermost_frame() -> None:
    def fail() -> None:
        raise ValueError("the note: patient is confused")

    with pytest.raises(ValueError) as caught:
        fail()
    assert where(caught.value).startswith("tests.test_redact:")
    assert "confused" not in summary(caught.value)
    assert where(ValueError("never raised")) == "?"
