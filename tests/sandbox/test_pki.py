"""The sandbox's throwaway PKI: a chain a TLS stack accepts, for the names the sandbox listens on."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from cryptography import x509

from sandbox.pki import generate


def test_the_certificates_chain_to_the_ca_and_name_the_loopback_hosts(tmp_path: Path) -> None:
    pki = generate(tmp_path)
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    client = x509.load_pem_x509_certificate(pki.client_cert.read_bytes())
    for cert in (server, client):
        assert cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    # Loadable as the receiver loads them (server side, client CA required) and as a client presents them.
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(pki.server_cert, pki.server_key)
    server_side.load_verify_locations(pki.ca)
    client_side = ssl.create_default_context(cafile=str(pki.ca))
    client_side.load_cert_chain(pki.client_cert, pki.client_key)


def test_keys_are_owner_only_and_each_run_gets_a_new_ca(tmp_path: Path) -> None:
    first, second = generate(tmp_path / "a"), generate(tmp_path / "b")
    for key in (first.server_key, first.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert first.ca.read_bytes() != second.ca.read_bytes()
