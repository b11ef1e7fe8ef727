"""laissez: bounded, pre-authorised privilege for AI agents on queues.

Every envelope, invocation, approval, delegation chain, revocation record and verdict comes from the Rust crates (``laissez._laissez``):
Python and the ``laissez`` command line give the same answers. ``laissez.pika`` publishes
calls with every header a ``laissez consume`` worker reads, and runs a worker whose ``Worker``
is the middleware's own gatekeeper; ``laissez.aio_pika`` does both on asyncio.
"""

from laissez._laissez import (
    MAX_ENVELOPE_LEN,
    REASONS,
    Approval,
    Chain,
    Decision,
    Denied,
    Envelope,
    InvalidKey,
    Invocation,
    LaissezError,
    Lease,
    Ledger,
    LedgerError,
    Outcome,
    PublicKey,
    Record,
    RevocationSet,
    SecretKey,
    SignError,
    Verifier,
    Worker,
    Admission,
    approve,
    delegate,
    invoke,
    log_to_stderr,
    revoke,
    sign,
)

__all__ = [
    "MAX_ENVELOPE_LEN",
    "REASONS",
    "Approval",
    "Chain",
    "Decision",
    "Denied",
    "Envelope",
    "InvalidKey",
    "Invocation",
    "LaissezError",
    "Lease",
    "Ledger",
    "LedgerError",
    "Outcome",
    "PublicKey",
    "Record",
    "RevocationSet",
    "SecretKey",
    "SignError",
    "Verifier",
    "Worker",
    "Admission",
    "approve",
    "delegate",
    "invoke",
    "log_to_stderr",
    "revoke",
    "sign",
]
