"""``AMQP_URL`` lists one RabbitMQ node or a cluster's nodes as full URLs, comma-separated; a
list chatstream cannot use stops the process with an error naming ``AMQP_URL`` and the entry
by its position (never its text, which may hold a password); ``AMQP_PASSWORD`` goes into every
node's URL."""

from __future__ import annotations

import pytest
from yarl import URL

from shared.amqp_nodes import AmqpNodesError, join_nodes, node_urls
from shared.settings import ConnectionSettings, SettingsError

REDIS = {"REDIS_URL": "redis://redis:6379/0"}
CLUSTER = "amqp://u@rabbit-1:5672/,amqp://u@rabbit-2:5672/, amqps://u@rabbit-3:5671/jobs"


def test_one_url_is_one_node() -> None:
    assert node_urls("amqp://guest:guest@127.0.0.1:5672/") == (
        "amqp://guest:guest@127.0.0.1:5672/",
    )


def test_several_urls_are_the_nodes_in_their_order() -> None:
    assert node_urls(CLUSTER) == (
        "amqp://u@rabbit-1:5672/",
        "amqp://u@rabbit-2:5672/",
        "amqps://u@rabbit-3:5671/jobs",
    )


def test_the_nodes_join_back_into_the_setting_they_came_from() -> None:
    nodes = node_urls(CLUSTER)
    assert node_urls(join_nodes(nodes)) == nodes


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("amqp://a/,,amqp://b/", "entry 2 is empty: separate node URLs by one comma"),
        ("amqp://a/,", "entry 2 is empty: separate node URLs by one comma"),
        (
            "amqp://a/,rabbit-2:5672",
            "entry 2 must be an amqp:// or amqps:// URL with a host, such as "
            "amqp://user@rabbit-1:5672/",
        ),
        (
            "amqp:///vhost",
            "entry 1 must be an amqp:// or amqps:// URL with a host, such as "
            "amqp://user@rabbit-1:5672/",
        ),
        ("amqp://a/,amqp://u:secret@b:port/", "entry 2 is not a URL: "),
    ],
)
def test_a_list_it_cannot_use_names_the_entry(value: str, message: str) -> None:
    with pytest.raises(AmqpNodesError) as raised:
        node_urls(value)
    assert str(raised.value).startswith(message)
    assert "secret" not in str(raised.value)


def test_a_wrong_node_list_is_a_settings_error_naming_amqp_url() -> None:
    with pytest.raises(SettingsError) as raised:
        ConnectionSettings.from_env({**REDIS, "AMQP_URL": "amqp://u:secret@a/,,amqp://b/"})
    assert str(raised.value) == "AMQP_URL: entry 2 is empty: separate node URLs by one comma"


def test_the_password_goes_into_every_node() -> None:
    connections = ConnectionSettings.from_env(
        {**REDIS, "AMQP_URL": CLUSTER, "AMQP_PASSWORD": "p@ss,word"}
    )
    assert connections.amqp_url is not None
    nodes = [URL(node) for node in node_urls(connections.amqp_url)]
    assert [node.host for node in nodes] == ["rabbit-1", "rabbit-2", "rabbit-3"]
    assert {(node.user, node.password) for node in nodes} == {("u", "p@ss,word")}


def test_a_node_that_holds_a_password_already_is_refused_with_amqp_password() -> None:
    environ = {
        **REDIS,
        "AMQP_URL": "amqp://u@rabbit-1/,amqp://u:inline@rabbit-2/",
        "AMQP_PASSWORD": "p",
    }
    with pytest.raises(SettingsError, match="AMQP_URL already holds a password"):
        ConnectionSettings.from_env(environ)
