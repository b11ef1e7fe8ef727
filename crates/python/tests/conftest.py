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
