"""Named queries and their shared parts (appliance.sql)."""

from importlib import resources

import pytest

from appliance.sql import compose, load_queries


def text_of(composed) -> str:
    return composed.as_string(None)  # parts of SQL alone need no connection to be written out


def test_a_part_is_written_once_and_filled_into_each_query_that_names_it():
    queries = {"mine": "owner = %(owner)s", "rows": "SELECT * FROM t WHERE {mine} LIMIT 5",
               "count": "SELECT count(*) FROM t WHERE {mine}"}
    assert text_of(compose(queries, "rows")) == "SELECT * FROM t WHERE owner = %(owner)s LIMIT 5"
    assert text_of(compose(queries, "count")) == "SELECT count(*) FROM t WHERE owner = %(owner)s"


def test_a_query_without_parts_is_itself():
    assert text_of(compose({"q": "SELECT %(a)s"}, "q")) == "SELECT %(a)s"


def test_a_part_that_is_not_there_is_named():
    with pytest.raises(KeyError, match="nowhere"):
        compose({"q": "SELECT 1 WHERE {nowhere}"}, "q")


@pytest.mark.parametrize("filename", sorted(path.name for path in resources.files("appliance.sql").iterdir()
                                            if path.name.endswith(".sql")))
def test_every_part_a_query_names_is_a_query_of_its_file(filename):
    queries = load_queries(filename)
    for name, text in queries.items():
        named = {part for part in queries if "{" + part + "}" in text}
        if named:
            assert "{" not in text_of(compose(queries, name)), name


def test_the_run_page_counts_the_rows_it_pages_with_one_filter():
    queries = load_queries("web.sql")
    part = queries["run_task_filter"]
    for name in ("run_tasks", "run_tasks_matching"):
        assert queries[name].count("{run_task_filter}") == 1 and part in text_of(compose(queries, name))
