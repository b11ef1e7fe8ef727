"""Revocation records against an independent COSE implementation (pycose), both
directions, through the real `laissez` binary (docs/spec.md §14):

(a) a record pycose signs with the aad `laissez/v1/revocation` revokes in `laissez verify
    --revocations`, and `laissez inspect` reads it; one signed with another aad is ignored;
(b) a record from `laissez revoke` verifies in pycose with that aad only, and decodes to
    what was asked for, in deterministic CBOR.
"""

import json
import time

import cbor2
from pycose.headers import KID

from test_interop import (
    AGENT, AUD, ENVELOPE_AAD, INVOCATION_AAD, b64url, deterministic, pycose_verifies, sign1,
    unb64url,
)

REVOCATION_AAD = b"laissez/v1/revocation"


def record(key, entries, iat, keep=3600, aad=REVOCATION_AAD) -> bytes:
    return sign1(deterministic({1: iat, 2: iat + keep, 3: entries}), key, aad)


def sign_session(laissez, issuer, session: str) -> str:
    result = laissez(
        "sign", "--key", str(issuer.pem), "--agent", AGENT, "--aud", AUD, "--tool",
        "crm.read", "--session", session,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def verify(laissez, issuer, envelope: str, records_file: str):
    return laissez(
        "verify", "--trust", str(issuer.pub), "--aud", AUD, "--tool", "crm.read", "--class",
        "read", "--revocations", records_file, "--json", envelope,
    )


def test_a_pycose_record_revokes_in_laissez(tmp_path, laissez, issuer):
    ended = sign_session(laissez, issuer, "task-42")
    other = sign_session(laissez, issuer, "task-43")
    now = int(time.time())
    # An entry of an unknown kind (9) is skipped; the session entry still applies.
    rec = record(issuer, [[9, {"future": 1}], [3, "task-42"]], now + 5)
    (tmp_path / "records.txt").write_text(b64url(rec) + "\n")

    result = verify(laissez, issuer, ended, "records.txt")
    assert result.returncode == 1, result.stderr
    assert result.stderr.decode().startswith("denied: revoked\n")
    assert json.loads(result.stdout)["reason"] == "revoked"
    assert verify(laissez, issuer, other, "records.txt").returncode == 0

    shown = laissez("inspect", "--json", b64url(rec))
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout)
    assert out["verified"] is False and out["kid"] == issuer.kid.hex()
    assert out["revocation"] == {
        "iat": now + 5,
        "until": now + 5 + 3600,
        "entries": [{"kind": 9, "value": None}, {"kind": "sid", "value": "task-42"}],
    }


def test_laissez_ignores_records_under_another_aad_or_bound(tmp_path, laissez, issuer):
    ended = sign_session(laissez, issuer, "task-42")
    now = int(time.time())
    bad = [
        record(issuer, [[3, "task-42"]], now + 5, aad=ENVELOPE_AAD),
        record(issuer, [[3, "task-42"]], now + 5, aad=INVOCATION_AAD),
        record(issuer, [[3, "task-42"]], now + 5, keep=7 * 86400 + 1),
        record(issuer, [[3, "task-42"]] * 65, now + 5),
    ]
    (tmp_path / "bad.txt").write_text("".join(b64url(r) + "\n" for r in bad))
    result = verify(laissez, issuer, ended, "bad.txt")
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    for line in range(1, 5):
        assert f"bad.txt line {line}: ignored" in err, err


def test_laissez_records_verify_in_pycose(laissez, issuer):
    result = laissez(
        "revoke", "--key", str(issuer.pem), "--cti", "00" * 16, "--kid", issuer.kid.hex(),
        "--agent", AGENT, "--session", "task-42", "--obo", "user:alice", "--keep", "2h",
    )
    assert result.returncode == 0, result.stderr
    rec = unb64url(result.stdout.decode())
    msg = pycose_verifies(rec, issuer.raw_public, REVOCATION_AAD)
    assert msg is not None, "pycose does not verify laissez's record"
    assert msg.phdr[KID] == issuer.kid
    assert msg.uhdr == {}
    payload = cbor2.loads(msg.payload)
    assert payload[2] - payload[1] == 7200
    assert payload[3] == [
        [0, bytes(16)], [1, issuer.kid], [2, AGENT], [3, "task-42"], [4, "user:alice"],
    ]
    assert deterministic(payload) == msg.payload, "the record is not deterministic CBOR"
    # The aad is what keeps a record from passing as an envelope or an invocation.
    for aad in (ENVELOPE_AAD, INVOCATION_AAD, b""):
        assert pycose_verifies(rec, issuer.raw_public, aad) is None
