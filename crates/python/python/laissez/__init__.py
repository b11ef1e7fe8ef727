"""laissez: bounded, pre-authorised privilege for AI agents on queues.

Every envelope, invocation and verdict comes from the Rust crates (``laissez._laissez``):
Python and the ``laissez`` command line give the same answers. ``laissez.pika`` publishes
calls with every header a ``laissez consume`` worker reads.
"""

from laissez._laissez import (
    MAX_ENVELOPE_LEN,
    REASONS,
    Decision,
    Denied,
    Envelope,
    InvalidKey,
    Invocation,
    LaissezError,
    Ledger,
    LedgerError,
    Outcome,
    PublicKey,
    SecretKey,
    SignError,
    Verifier,
    invoke,
    sign,
)

__all__ = [
    "MAX_ENVELOPE_LEN",
    "REASONS",
    "Decision",
    "Denied",
    "Envelope",
    "InvalidKey",
    "Invocation",
    "LaissezError",
    "Ledger",
    "LedgerError",
    "Outcome",
    "PublicKey",
    "SecretKey",
    "SignError",
    "Verifier",
    "invoke",
    "sign",
]
