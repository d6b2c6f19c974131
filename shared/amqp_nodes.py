"""``AMQP_URL``'s nodes: one broker's URL, or the nodes of a RabbitMQ cluster as full URLs
separated by commas (``amqp://u@rabbit-1:5672/,amqp://u@rabbit-2:5672/``). A process connects
to the first node that answers and moves on to the next, in order, when its node goes away.

A comma inside a URL's user name or password must be written ``%2C``: the comma separates
nodes. ``AMQP_PASSWORD`` is put into every node's URL (shared/settings.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("amqp", "amqps")


class AmqpNodesError(ValueError):
    """The value does not list nodes chatstream can connect to; the message says which entry."""


def node_urls(value: str) -> tuple[str, ...]:
    """The node URLs ``value`` lists, in its order."""
    nodes = []
    for position, entry in enumerate(value.split(","), start=1):
        url = entry.strip()
        if not url:
            raise AmqpNodesError(f"entry {position} is empty: separate node URLs by one comma")
        try:
            parts = urlsplit(url)
            # Reading the port checks it: a port that is no number or out of range raises.
            parts.port  # noqa: B018
        except ValueError as e:
            raise AmqpNodesError(f"entry {position} is not a URL: {e}") from e
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise AmqpNodesError(
                f"entry {position} must be an amqp:// or amqps:// URL with a host, "
                f"such as amqp://user@rabbit-1:5672/"
            )
        nodes.append(url)
    return tuple(nodes)


def join_nodes(urls: tuple[str, ...]) -> str:
    """The one setting that lists ``urls``: what :func:`node_urls` reads back."""
    return ",".join(urls)
