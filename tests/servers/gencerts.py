#!/usr/bin/env python3
"""Generate a throw-away test CA and server certificates for mailguard's TLS tests.

  python3 tests/servers/gencerts.py --out DIR [--name localhost]

writes into DIR (keys are EC P-256, mode 0600):

  ca.pem, ca.key                  the test CA (give ca.pem to the client as smtp.ca_file)
  good.pem, good.key              signed by the CA, SAN: NAME, 127.0.0.1, ::1; valid now
  wronghost.pem, wronghost.key    signed by the CA, valid now, but for wrong-host.invalid only
  expired.pem, expired.key        signed by the CA for NAME, expired yesterday
  selfsigned.pem, selfsigned.key  for NAME, valid now, but self-signed (not from the CA)

Every run makes a new CA, so nothing from one run is trusted by the next.
"""

import argparse
import datetime
import ipaddress
import os
import sys

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:
    sys.stderr.write(
        "gencerts.py: the Python package cryptography is missing; "
        "install it with: python3 -m pip install -r tests/servers/requirements.txt\n"
    )
    sys.exit(3)

DAY = datetime.timedelta(days=1)


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def write(directory, stem, cert, key):
    with open(os.path.join(directory, stem + ".pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    path = os.path.join(directory, stem + ".key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(now):
    key = new_key()
    subject = name("mailguard test CA")
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_leaf(common_name, sans, not_before, not_after, issuer_cert, issuer_key):
    key = new_key()
    issuer_name = issuer_cert.subject if issuer_cert is not None else name(common_name)
    signing_key = issuer_key if issuer_key is not None else key
    builder = (x509.CertificateBuilder()
               .subject_name(name(common_name)).issuer_name(issuer_name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.SubjectAlternativeName(sans), critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                              critical=False))
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),
            critical=False)
    return builder.sign(signing_key, hashes.SHA256()), key


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="directory to write into (created)")
    p.add_argument("--name", default="localhost", help="DNS name of the good certificates")
    opts = p.parse_args(argv)
    os.makedirs(opts.out, exist_ok=True)

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_cert, ca_key = make_ca(now)
    write(opts.out, "ca", ca_cert, ca_key)

    good_sans = [x509.DNSName(opts.name),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.IPAddress(ipaddress.ip_address("::1"))]
    leaves = {
        "good": (opts.name, good_sans, now - DAY, now + 30 * DAY, ca_cert, ca_key),
        "wronghost": ("wrong-host.invalid", [x509.DNSName("wrong-host.invalid")],
                      now - DAY, now + 30 * DAY, ca_cert, ca_key),
        "expired": (opts.name, good_sans, now - 30 * DAY, now - DAY, ca_cert, ca_key),
        "selfsigned": (opts.name, good_sans, now - DAY, now + 30 * DAY, None, None),
    }
    for stem, args in leaves.items():
        cert, key = make_leaf(*args)
        write(opts.out, stem, cert, key)
    print(opts.out)


if __name__ == "__main__":
    main()
