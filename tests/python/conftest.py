"""Shared set-up of the interop suite: the real `laissez` binary and Ed25519 key files.

scripts/test builds the binary and passes its path in LAISSEZ_BIN; without it the suite
fails at once rather than passing vacuously.
"""

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def laissez_bin() -> str:
    path = os.environ.get("LAISSEZ_BIN")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(
            "set LAISSEZ_BIN to the laissez binary (cargo build -p laissez-cli), "
            f"got {path!r}"
        )
    return path


@dataclass
class Key:
    """An Ed25519 key pair in memory and as the key files laissez reads."""

    private: Ed25519PrivateKey
    pem: Path
    pub: Path

    @property
    def raw_public(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def raw_private(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def kid(self) -> bytes:
        # The first 8 bytes of SHA-256 of the raw public key (docs/spec.md §1).
        return hashlib.sha256(self.raw_public).digest()[:8]


def make_key(directory: Path, name: str) -> Key:
    """A fresh key written as PKCS#8 PEM (mode 0600) and SubjectPublicKeyInfo PEM."""
    private = Ed25519PrivateKey.generate()
    pem = directory / f"{name}.pem"
    pem.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(pem, 0o600)  # laissez refuses a secret key others can read
    pub = directory / f"{name}.pub"
    pub.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Key(private, pem, pub)


@pytest.fixture
def issuer(tmp_path: Path) -> Key:
    return make_key(tmp_path, "issuer")


@pytest.fixture
def holder(tmp_path: Path) -> Key:
    return make_key(tmp_path, "holder")


@pytest.fixture
def laissez(tmp_path: Path):
    """Runs `laissez ARGS...` in the test's directory; returns the CompletedProcess."""
    binary = laissez_bin()

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [binary, *args],
            cwd=tmp_path,
            input=stdin,
            capture_output=True,
            check=False,
        )

    return run
