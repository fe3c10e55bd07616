"""Guidelines per queue kind: an engineer's saved edit wins over the app config's text, bad input is refused."""

import warnings

import pytest

from storage import guidelines
from storage.crud import StoreError
from storage.db import session_scope
from tests.helpers import seed_store


def test_a_saved_edit_replaces_the_config_text_and_an_empty_one_hides_it(db_url):
    seed_store(db_url)
    with session_scope(db_url) as session:
        assert guidelines.current(session, kind="pairwise", default="From the config.") == "From the config."
        guidelines.save(session, kind="pairwise", text="  Prefer **short** answers.  ", username="eng")
    with session_scope(db_url) as session:
        assert guidelines.current(session, kind="pairwise", default="From the config.") == "Prefer **short** answers."
        assert guidelines.current(session, kind="rating", default="Rate 1-5.") == "Rate 1-5."
        guidelines.save(session, kind="pairwise", text="", username="eng")
    with session_scope(db_url) as session:
        assert guidelines.current(session, kind="pairwise", default="From the config.") == ""


def test_an_unknown_or_missing_kind_reads_the_default_and_cannot_be_saved(db_url):
    seed_store(db_url)
    with session_scope(db_url) as session, warnings.catch_warnings():
        warnings.simplefilter("error")
        assert guidelines.current(session, kind=None, default="d") == "d"
        assert guidelines.current(session, kind="essay", default="d") == "d"
    with pytest.raises(StoreError, match="kind: 'essay' is not one of"), session_scope(db_url) as session:
        guidelines.save(session, kind="essay", text="x", username="eng")
    with pytest.raises(StoreError, match="at most 20000 characters"), session_scope(db_url) as session:
        guidelines.save(session, kind="rating", text="x" * 20_001, username="eng")
