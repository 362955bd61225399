"""TLS against a local HTTPS server whose CA is made by the test: verification on by default,
a CA bundle and client certificates from the settings, and every refusal in words."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.config import ConfigError, parse_settings
from console.sources.base import ErrorKind
from console.sources.factory import client_cert, http_options
from console.sources.http import Auth, HttpClient

from test_hostile_endpoints import Origin, source_error_of

x509 = pytest.importorskip("cryptography.x509", reason="cryptography makes the test CA")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402


@dataclass(frozen=True)
class Pki:
    ca: str  # CA certificate (PEM), the "ca_bundle"
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    client_combined: str  # certificate and key in one PEM file


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
           issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False,
           san: x509.GeneralName | None = None, usage: object = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False), critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if san is not None:
        b = b.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    if usage is not None:
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("AISC test CA", ca_key, _name("AISC test CA"), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _issue("127.0.0.1", server_key, ca.subject, ca_key,
                    san=x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _issue("aisc-console", client_key, ca.subject, ca_key,
                    usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    files = {"ca": _pem(ca), "server_cert": _pem(server), "server_key": _key_pem(server_key),
             "client_cert": _pem(client), "client_key": _key_pem(client_key),
             "client_combined": _pem(client) + _key_pem(client_key)}
    for name, data in files.items():
        (d / f"{name}.pem").write_bytes(data)
    return Pki(**{name: str(d / f"{name}.pem") for name in files})


@pytest.fixture
def https(pki: Pki) -> Iterator[Callable[..., Origin]]:
    made: list[Origin] = []

    def make(*, require_client_cert: bool = False, version: str = "TLSv1_3") -> Origin:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.maximum_version = getattr(ssl.TLSVersion, version)
        ctx.load_cert_chain(pki.server_cert, pki.server_key)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(pki.ca)
        made.append(Origin(tls=ctx))
        return made[-1]

    yield make
    for o in made:
        o.close()


def _settings(url: str, **tls: object) -> object:
    """The Prometheus endpoint settings of a one-cluster config with these TLS keys."""
    return parse_settings({"clusters": [{"name": "c", "prometheus": {"url": url, **tls}}]}
                          ).cluster().prometheus


def test_verification_is_on_by_default_and_refuses_an_unknown_ca(
        https: Callable[..., Origin]) -> None:
    server = https()
    ep = _settings(server.url)
    assert ep.verify is True and ep.ca_bundle is None
    client = HttpClient(server.url, **http_options("prometheus", ep))
    e = source_error_of(lambda: client.get_json("api/v1/query"))
    assert e.kind is ErrorKind.UNREACHABLE
    assert e.message == (f"TLS: the certificate of 127.0.0.1:{server.port} is not signed by a "
                         "trusted authority (self-signed or a private CA? set ca_bundle to the CA "
                         "certificate)")
    assert server.requests == []  # nothing was sent to a server the console could not trust
    assert client.warnings == ()


def test_the_configured_ca_bundle_is_trusted(https: Callable[..., Origin], pki: Pki) -> None:
    server = https()
    ep = _settings(server.url, ca_bundle=pki.ca)
    client = HttpClient(server.url, auth=Auth("bearer", secret="tok"),
                        **http_options("prometheus", ep))
    assert client.get_json("api/v1/query") == {}
    assert server.requests[0]["headers"]["Authorization"] == "Bearer tok"
    assert client.warnings == ()
    # The older spelling, verify = "PATH", means the same.
    older = _settings(server.url, verify=pki.ca)
    assert HttpClient(server.url, **http_options("prometheus", older)).get_json("x") == {}


def test_a_name_the_certificate_does_not_list_is_refused(https: Callable[..., Origin],
                                                         pki: Pki) -> None:
    server = https()
    url = f"https://localhost:{server.port}"
    e = source_error_of(lambda: HttpClient(url, verify=pki.ca).get_json("x"))
    assert e.kind is ErrorKind.UNREACHABLE
    assert e.message == (f"TLS: the certificate of localhost:{server.port} is not issued for "
                         "that host name (connect by a name the certificate lists)")


def test_verification_off_needs_saying_so_and_stays_a_warning(https: Callable[..., Origin]) -> None:
    server = https()
    ep = _settings(server.url, verify=False)
    client = HttpClient(server.url, **http_options("prometheus", ep))
    assert client.get_json("x") == {}
    assert client.warnings == (
        "TLS certificate verification is off for 127.0.0.1 (verify = false): the console cannot "
        "tell this server from an impostor",)


@pytest.mark.parametrize("form", ["cert_and_key", "combined", "colon"])
def test_the_client_certificate_is_presented(https: Callable[..., Origin], pki: Pki,
                                             form: str) -> None:
    server = https(require_client_cert=True)
    tls = {"cert_and_key": {"client_cert": pki.client_cert, "client_key": pki.client_key},
           "combined": {"client_cert": pki.client_combined},
           "colon": {"client_cert": f"{pki.client_cert}:{pki.client_key}"}}[form]
    ep = _settings(server.url, ca_bundle=pki.ca, **tls)
    assert client_cert(ep) == ((pki.client_cert, pki.client_key) if form != "combined"
                               else pki.client_combined)
    client = HttpClient(server.url, **http_options("prometheus", ep))
    assert client.get_json("x") == {}
    subject = dict(pair for rdn in server.requests[0]["peer_cert"]["subject"] for pair in rdn)
    assert subject["commonName"] == "aisc-console"


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_a_server_that_wants_a_client_certificate_refuses_in_words(
        https: Callable[..., Origin], pki: Pki, version: str) -> None:
    server = https(require_client_cert=True, version=version)
    e = source_error_of(lambda: HttpClient(server.url, verify=pki.ca).get_json("x"))
    assert e.kind is ErrorKind.UNREACHABLE
    refused = (f"TLS: 127.0.0.1:{server.port} refused the connection during the handshake: it "
               "wants a client certificate it trusts (check client_cert and client_key)")
    hung_up = (f"TLS: 127.0.0.1:{server.port} closed the connection during the handshake (as a "
               "server that wants a client certificate does: check client_cert and client_key)")
    if version == "TLSv1_2":  # the refusal is part of the handshake: always an alert
        assert e.message == refused
    else:  # the alert comes after the client's Finished: it may lose the race with the hang-up
        assert e.message in (refused, hung_up)
    assert server.requests == []


def test_missing_tls_files_are_configuration_errors(https: Callable[..., Origin], pki: Pki,
                                                    tmp_path: Path) -> None:
    server = https()
    missing = str(tmp_path / "nowhere.pem")
    e = source_error_of(lambda: HttpClient(server.url, verify=missing).get_json("x"))
    assert (e.kind, e.message) == (ErrorKind.CONFIG, f"CA bundle file not found: {missing}")
    e = source_error_of(lambda: HttpClient(server.url, verify=pki.ca, cert=(missing, pki.client_key)
                                   ).get_json("x"))
    assert (e.kind, e.message) == (ErrorKind.CONFIG, f"client certificate file not found: {missing}")


@pytest.mark.parametrize("tls,words", [
    ({"ca_bundle": "ca.pem", "verify": False}, "ca_bundle and verify = false contradict each other"),
    ({"ca_bundle": "ca.pem", "verify": "other.pem"}, "give the CA bundle once, as ca_bundle"),
    ({"client_key": "k.pem"}, "client_key: needs client_cert"),
])
def test_contradictory_tls_settings_are_refused(tls: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        _settings("https://prom:9090", **tls)
