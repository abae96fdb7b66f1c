import pytest

from appliance.config import ConfigError, Settings, database_hosts, mask_url, parse_whole_number

SECRET = "s3cr3t-pa55"


def test_database_url_is_normalised_to_psycopg2():
    settings = Settings.from_env({"DATABASE_URL": f"postgres://app:{SECRET}@db.example:5433/tracking"})
    assert settings.database_url.drivername == "postgresql+psycopg2"
    assert settings.database_url.port == 5433
    assert settings.database_url.database == "tracking"


def test_database_url_wins_over_sqlalchemy_url_and_parts():
    settings = Settings.from_env({
        "DATABASE_URL": "postgresql://a@first/one",
        "SQLALCHEMY_URL": "postgresql://b@second/two",
        "POSTGRES_HOST": "third",
    })
    assert settings.database_url.host == "first"


def test_sqlalchemy_url_is_accepted():
    settings = Settings.from_env({"SQLALCHEMY_URL": "postgresql+psycopg2://b@second/two"})
    assert settings.database_url.database == "two"


def test_url_from_the_seeds_postgres_variables():
    settings = Settings.from_env({
        "POSTGRES_HOST": "db", "POSTGRES_PORT": "6543", "POSTGRES_DB": "biomero",
        "POSTGRES_USER": "omero", "POSTGRES_PASSWORD": SECRET,
    })
    url = settings.database_url
    assert (url.host, url.port, url.database, url.username, url.password) == ("db", 6543, "biomero", "omero", SECRET)


def test_every_problem_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"POSTGRES_HOST": "db", "POSTGRES_PORT": "eighty", "TRACKER_CACHE_SIZE": "-1"})
    message = str(caught.value)
    for name in ("POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PORT", "TRACKER_CACHE_SIZE"):
        assert name in message
    assert len(caught.value.problems) == 4


def test_missing_database_is_explained():
    with pytest.raises(ConfigError, match="DATABASE_URL is not set"):
        Settings.from_env({})


@pytest.mark.parametrize("url, expected", [
    (f"mysql://root:{SECRET}@db/x", "must be a postgresql:// URL"),
    (f"not a url {SECRET}", "is not a URL"),
    (f"postgresql://root:{SECRET}@db", "names no database"),
    (f"postgresql://app:{SECRET}@db:99999/x", "has port 99999"),
    (f"postgresql://app:{SECRET}@db:port/x", "malformed host or port"),
    (f"postgresql://app:{SECRET}@d b/x", "not plain ASCII"),
    (f"postgresql://app:{SECRET}@dé.example/x", "xn--"),
    # Several hosts (a primary and its standby).
    (f"postgresql://app:{SECRET}@/x?host=a,b&port=5432", "hosts and ports that do not pair up"),
    (f"postgresql://app:{SECRET}@/x?host=a:one&host=b", "hosts and ports that do not pair up"),
    (f"postgresql://app:{SECRET}@db/x?host=other", "names hosts both before the database and in host="),
    (f"postgresql://app:{SECRET}@a:5432,b:99999/x", "has port 99999"),
    (f"postgresql://app:{SECRET}@/x?host=a&host=d%20b", "not plain ASCII"),
    (f"postgresql://app:{SECRET}@a,b", "names no database"),
])
def test_malformed_url_is_refused_without_repeating_it(url, expected):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DATABASE_URL": url})
    assert expected in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("url", [
    f"postgresql://app:{SECRET}@/tracking?host=10.0.0.1:5432&host=10.0.0.2:5433&target_session_attrs=read-write",
    f"postgresql://app:{SECRET}@/tracking?host=10.0.0.1,10.0.0.2&port=5432,5433&target_session_attrs=read-write",
    f"postgresql://app:{SECRET}@10.0.0.1:5432,10.0.0.2:5433/tracking?target_session_attrs=read-write",
])
def test_a_primary_and_its_standby_are_both_shown_without_the_password(url):
    settings = Settings.from_env({"DATABASE_URL": url})
    assert database_hosts(settings.database_url) == [("10.0.0.1", 5432), ("10.0.0.2", 5433)]
    assert settings.database_url_masked == (
        "postgresql+psycopg2://app:***@10.0.0.1:5432,10.0.0.2:5433/tracking?target_session_attrs=read-write")
    assert SECRET not in repr(settings)


def test_printed_settings_mask_the_password():
    settings = Settings.from_env({"DATABASE_URL": f"postgresql://app:{SECRET}@db/tracking"})
    for text in (repr(settings), str(settings), settings.database_url_masked):
        assert SECRET not in text
        assert "app:***@db" in text


URL = "postgresql://app@db/tracking"


@pytest.mark.parametrize("name, value, expected", [
    ("BACKEND_PORT", "70000", "from 1 to 65535, not 70000"),
    ("BACKEND_PORT", "８０００", "must be a whole number"),  # int() would take full-width digits
    ("WEB_WORKERS", "1_000", "must be a whole number"),
    ("WEB_WORKERS", "257", "from 1 to 256"),
    ("MONITOR_POLL_INTERVAL", "-1", "at least"),
    ("MONITOR_POLL_INTERVAL", "9" * 40, "at most 2147483647"),
    ("CHANGE_RETENTION_DAYS", "40000", "from 1 to 36500"),
])
def test_numbers_are_plain_digits_within_bounds(name, value, expected):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DATABASE_URL": URL, name: value})
    assert len(caught.value.problems) == 1
    assert name in str(caught.value) and expected in str(caught.value)


def test_a_password_given_as_a_query_parameter_is_masked_too():
    masked = mask_url(f"postgresql://app@db/tracking?password={SECRET}&sslpassword={SECRET}&sslmode=require")
    assert SECRET not in masked
    assert masked == "postgresql://app@db/tracking?password=***&sslmode=require&sslpassword=***"


@pytest.mark.parametrize("maximum", [2**31 - 1, 2**62, 2**63 - 1])
def test_every_whole_number_up_to_the_bound_is_taken_and_one_more_refused(maximum):
    # the schema's maximum is inclusive: the bound itself is a valid value (found by schemathesis)
    assert parse_whole_number(str(maximum), 0, maximum) == maximum
    with pytest.raises(ValueError, match=f"{maximum}, not {maximum + 1}"):
        parse_whole_number(str(maximum + 1), 0, maximum)


def test_a_value_that_is_not_utf8_is_named_once_and_not_used():
    # os.environ hands undecodable bytes over as lone surrogates.
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"POSTGRES_HOST": "db\udcff", "POSTGRES_DB": "x", "POSTGRES_USER": "u",
                           "APPLIANCE_INGEST_TOKEN": "t\udce9"})
    assert sorted(caught.value.problems) == [
        "APPLIANCE_INGEST_TOKEN holds bytes that are not UTF-8 text",
        "POSTGRES_HOST holds bytes that are not UTF-8 text",
    ]
