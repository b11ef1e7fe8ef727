"""Shared set-up of the Python package's tests: the real `laissez` binary and key files.

scripts/test builds the binary and passes its path in LAISSEZ_BIN; without it the tests that
compare with the command line fail at once rather than passing vacuously.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import laissez

REPO = Path(__file__).resolve().parents[3]
AMQP_URL = os.environ.get("LAISSEZ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
REDIS_URL = os.environ.get("LAISSEZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/")
# The local 3-master cluster of scripts/redis-cluster (scripts/services starts it).
REDIS_CLUSTER_URL = os.environ.get(
    "LAISSEZ_TEST_REDIS_CLUSTER_URL",
    "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003/",
)
SERVICES_DIR = Path(os.environ.get("LAISSEZ_SERVICES_DIR", "/tmp/laissez-services"))
# The certificate of the local TLS listeners names `localhost`: the host must match it.
REDISS_URL = f"rediss://localhost:{os.environ.get('LAISSEZ_REDISS_PORT', '6390')}/"
# The local TLS Cluster of `scripts/redis-cluster tls`; its nodes announce 127.0.0.1, which the
# certificate names too.
REDISS_CLUSTER_URL = "rediss+cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103/"


@dataclass
class TlsFiles:
    """The throwaway TLS material of scripts/tls-certs, which the local listeners serve."""

    ca: Path
    cert: Path  # the client certificate (mutual TLS)
    key: Path
    other_ca: Path  # an unrelated CA: trusting only it, a client must refuse the servers


@pytest.fixture(scope="session")
def tls_files() -> TlsFiles:
    """Starts the local TLS listeners and TLS Cluster when they are down (both scripts are
    idempotent), as the Rust tests do."""
    scripts = REPO / "scripts"
    subprocess.run([scripts / "tls-listeners"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([scripts / "redis-cluster", "tls"], check=True, stdout=subprocess.DEVNULL)
    tls = SERVICES_DIR / "tls"
    return TlsFiles(tls / "ca.pem", tls / "client.pem", tls / "client.key", tls / "other-ca.pem")


def laissez_bin() -> str:
    path = os.environ.get("LAISSEZ_BIN")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(
            f"set LAISSEZ_BIN to the laissez binary (cargo build -p laissez-cli), got {path!r}"
        )
    return path


@dataclass
class KeyFiles:
    """A laissez.SecretKey and the key files `laissez keygen` would write for it."""

    key: laissez.SecretKey
    path: Path  # secret, 0600
    pub: Path  # public, SPKI PEM


def key_files(directory: Path, name: str) -> KeyFiles:
    key = laissez.SecretKey.generate()
    path = directory / name
    pub = key.save(path)
    return KeyFiles(key, path, Path(pub))


@pytest.fixture
def issuer(tmp_path: Path) -> KeyFiles:
    return key_files(tmp_path, "issuer.key")


@pytest.fixture
def agent(tmp_path: Path) -> KeyFiles:
    return key_files(tmp_path, "agent.key")


@pytest.fixture
def cli(tmp_path: Path):
    """Runs `laissez ARGS...` in the test's directory; returns the CompletedProcess."""
    binary = laissez_bin()

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [binary, *args], cwd=tmp_path, input=stdin, capture_output=True, check=False
        )

    return run
