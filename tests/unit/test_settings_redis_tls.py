"""TLS to Redis: a ``rediss://`` REDIS_URL, or ``REDIS_TLS=true`` beside REDIS_SENTINELS, with
optional CA, client certificate and key files. A combination that cannot work, or a file that
cannot be read or is of the wrong kind, is a start-up error naming the variable. The client
built from the settings uses TLS on every connection, the pub/sub listener's included."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import SSLConnection
from redis.asyncio.sentinel import SentinelManagedSSLConnection

from launcher.local_redis import ServerTls
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings, RedisTlsSettings, SettingsError
from tests.support.tls import make_certificates

SENTINELS = {"REDIS_SENTINELS": "10.0.0.1:26379", "REDIS_SENTINEL_SERVICE": "main"}
TLS_URL = {"REDIS_URL": "rediss://redis.example:6380/0"}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerTls:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def files_of(tls: ServerTls) -> dict[str, str]:
    return {
        "REDIS_TLS_CA_FILE": str(tls.ca_file),
        "REDIS_TLS_CERT_FILE": str(tls.cert_file),
        "REDIS_TLS_KEY_FILE": str(tls.key_file),
    }


def redis_tls(environ: dict[str, str]) -> RedisTlsSettings | None:
    return ConnectionSettings.redis_from_env(environ).redis_tls


def test_the_url_scheme_chooses_tls_for_one_redis() -> None:
    assert redis_tls({"REDIS_URL": "redis://redis:6379/0"}) is None
    # No CA file: the system's CAs verify the server.
    assert redis_tls(TLS_URL) == RedisTlsSettings()
    assert redis_tls({**TLS_URL, "REDIS_TLS": "true"}) == RedisTlsSettings()


def test_the_files_are_taken_for_one_redis_and_for_sentinel(certificates: ServerTls) -> None:
    expected = RedisTlsSettings(
        str(certificates.ca_file), str(certificates.cert_file), str(certificates.key_file)
    )
    assert redis_tls({**TLS_URL, **files_of(certificates)}) == expected
    sentinel = {**SENTINELS, "REDIS_TLS": "TRUE", **files_of(certificates)}
    assert redis_tls(sentinel) == expected
    assert redis_tls({**SENTINELS, "REDIS_TLS": "false"}) is None


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({**SENTINELS, "REDIS_TLS": "yes"}, "REDIS_TLS must be true or false, not 'yes'"),
        (
            {"REDIS_URL": "redis://redis:6379/0", "REDIS_TLS": "true"},
            "REDIS_TLS=true contradicts REDIS_URL: one Redis is reached over TLS with a "
            "rediss:// URL, and only then",
        ),
        (
            {**TLS_URL, "REDIS_TLS": "false"},
            "REDIS_TLS=false contradicts REDIS_URL: one Redis is reached over TLS with a "
            "rediss:// URL, and only then",
        ),
        (
            {"REDIS_TLS": "true"},
            "REDIS_TLS=true, but none of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES is set",
        ),
        (
            {**SENTINELS, "REDIS_TLS_CA_FILE": "/etc/ssl/redis-ca.pem"},
            "REDIS_TLS_CA_FILE is set but TLS to Redis is off: it is on with a rediss:// "
            "REDIS_URL, or with REDIS_TLS=true beside REDIS_SENTINELS or REDIS_CLUSTER_NODES",
        ),
        (
            {"REDIS_URL": "redis://redis:6379/0", "REDIS_TLS_KEY_FILE": "/k.pem"},
            "REDIS_TLS_KEY_FILE is set but TLS to Redis is off: it is on with a rediss:// "
            "REDIS_URL, or with REDIS_TLS=true beside REDIS_SENTINELS or REDIS_CLUSTER_NODES",
        ),
    ],
)
def test_a_wrong_tls_combination_names_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        ConnectionSettings.redis_from_env(environ)
    assert str(raised.value) == message


def test_a_missing_file_names_its_variable_and_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.pem")
    with pytest.raises(SettingsError) as raised:
        redis_tls({**TLS_URL, "REDIS_TLS_CA_FILE": missing})
    assert str(raised.value) == (
        f"REDIS_TLS_CA_FILE: cannot read {missing!r}: No such file or directory"
    )


@pytest.mark.parametrize("given", ["REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE"])
def test_a_client_certificate_without_its_key_is_refused(
    certificates: ServerTls, given: str
) -> None:
    with pytest.raises(SettingsError, match=r"^set REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE"):
        redis_tls({**TLS_URL, given: files_of(certificates)[given]})


def test_a_ca_file_that_is_no_certificate_is_refused(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.der"
    not_pem.write_bytes(b"\x30\x82\x01\x0a not a certificate")
    with pytest.raises(SettingsError) as raised:
        redis_tls({**TLS_URL, "REDIS_TLS_CA_FILE": str(not_pem)})
    assert str(raised.value).startswith(f"REDIS_TLS_CA_FILE: {str(not_pem)!r} holds no PEM")


def test_a_key_that_is_not_the_certificates_is_refused(certificates: ServerTls) -> None:
    # The CA's key: a real key, of another certificate.
    environ = {
        **TLS_URL,
        **files_of(certificates),
        "REDIS_TLS_KEY_FILE": str(certificates.ca_file.with_name("ca.key")),
    }
    with pytest.raises(
        SettingsError, match=r"^REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE must be a PEM"
    ):
        redis_tls(environ)


async def test_every_connection_of_a_rediss_url_is_tls(certificates: ServerTls) -> None:
    settings = ConnectionSettings.redis_from_env({**TLS_URL, **files_of(certificates)})
    client = connect_redis(settings)
    # What the command pool and the pub/sub listener (make_connection) connect with.
    connection = client.connection_pool.make_connection()
    assert isinstance(connection, SSLConnection)
    assert connection.ca_certs == str(certificates.ca_file)
    assert connection.certfile == str(certificates.cert_file)
    await client.aclose()


async def test_every_connection_through_tls_sentinels_is_tls(certificates: ServerTls) -> None:
    environ = {**SENTINELS, "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": str(certificates.ca_file)}
    client = connect_redis(ConnectionSettings.redis_from_env(environ))
    connection = client.connection_pool.make_connection()
    assert isinstance(connection, SentinelManagedSSLConnection)
    assert connection.ca_certs == str(certificates.ca_file)
    sentinels = client.connection_pool.sentinel_manager.sentinels  # type: ignore[attr-defined]
    to_sentinel = sentinels[0].connection_pool.make_connection()
    assert isinstance(to_sentinel, SSLConnection)
    assert to_sentinel.ca_certs == str(certificates.ca_file)
    await client.aclose()
