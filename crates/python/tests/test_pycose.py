"""An independent COSE implementation (pycose) verifies what Python signs, with the
contract's external_aad: `laissez/v1` for envelopes, `laissez/v1/invocation` for
invocations (docs/spec.md §1, §6)."""

from __future__ import annotations

import cbor2
import pytest
from pycose.headers import KID, Algorithm
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message

import laissez

AUD = "billing-queue"


def pycose_verifies(data: bytes, public: laissez.PublicKey, aad: bytes) -> Sign1Message:
    msg = Sign1Message.decode(data)
    msg.external_aad = aad
    msg.key = OKPKey(crv=Ed25519, x=bytes(public))
    assert msg.verify_signature()
    return msg


def test_pycose_verifies_a_python_signed_envelope_and_invocation():
    issuer, agent = laissez.SecretKey.generate(), laissez.SecretKey.generate()
    envelope = laissez.sign(
        issuer, agent="a", aud=AUD, tools=["crm.*"], max_uses=2, holder=agent.public_key()
    )
    msg = pycose_verifies(bytes(envelope), issuer.public_key(), b"laissez/v1")
    assert msg.phdr[Algorithm].identifier == -8
    assert msg.phdr[KID] == bytes.fromhex(issuer.kid)
    claims = cbor2.loads(msg.payload)
    assert claims[2] == "a" and claims[3] == AUD
    assert claims[7].hex() == envelope.claims["cti"]
    assert claims[8] == {1: {1: 1, -1: 6, -2: bytes(agent.public_key())}}
    assert claims[-65537][3] == 2

    inv = laissez.invoke(agent, envelope, aud=AUD, message_id="m-1", tool="crm.read", cls="read",
                         body=b"hello")
    call = cbor2.loads(pycose_verifies(bytes(inv), agent.public_key(), b"laissez/v1/invocation").payload)
    assert (call[2], call[3], call[4], call[5], call[7]) == (AUD, "m-1", "crm.read", 1, inv.iat)


def test_pycose_refuses_another_external_aad():
    issuer = laissez.SecretKey.generate()
    envelope = laissez.sign(issuer, agent="a", aud=AUD, tools=["crm.*"])
    msg = Sign1Message.decode(bytes(envelope))
    msg.external_aad = b"laissez/v2"
    msg.key = OKPKey(crv=Ed25519, x=bytes(issuer.public_key()))
    with pytest.raises(Exception):
        assert msg.verify_signature()
