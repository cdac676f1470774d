"""What the document readers ask their servers for: the keys a read fetches, the field paths a mapping
adds, which way an OpenSearch/Elasticsearch version is read."""

from __future__ import annotations

import pytest

from piiguard.connectors.base import source_keys
from piiguard.connectors.opensearch import _mapped, _number


def test_a_path_through_an_array_fetches_the_whole_array() -> None:
    """A source filter on members.email drops the members without one: the items would shift."""
    assert source_keys(["email", "profile.phone", "members[].email", "members[].phone", "a.tags[]"]) == [
        "email", "profile.phone", "members", "a.tags"]
    assert source_keys(["profile.phone", "members[].email", "_id"], top_level=True) == ["profile", "members", "_id"]


@pytest.mark.parametrize("path", ["<email>", "profile.<email>", "a\\x1b", "x*", "a,b", "$where", "cut…", "a..b"])
def test_a_name_that_may_stand_for_another_key_reads_whole_documents(path: str) -> None:
    assert source_keys(["email", path]) is None


def test_the_mapping_adds_what_a_sample_missed_through_its_arrays() -> None:
    properties = {
        "email": {"type": "keyword"},
        "members": {"properties": {"email": {"type": "keyword"}, "rare": {"type": "text",
                                                                           "fields": {"keyword": {"type": "keyword"}}}}},
        "pets": {"type": "nested", "properties": {"name": {"type": "text"}}},
        "alias_of_email": {"type": "alias", "path": "email"},
        "empty": {"type": "object"},
    }
    paths = {"email", "members[].email"}  # what the sample saw
    _mapped(properties, "", {"members"}, paths)
    assert paths == {"email", "members[].email", "members[].rare", "pets[].name"}


@pytest.mark.parametrize(("number", "parsed"), [("2.19.4", (2, 19)), ("8.11.0-SNAPSHOT", (8, 11)), ("7.10.2", (7, 10)),
                                                ("", (0,)), ("x.y", (0,))])
def test_versions(number: str, parsed: tuple[int, ...]) -> None:
    assert _number({"number": number}) == parsed
