"""Type stubs of the Rust extension module (crates/python/src)."""

from __future__ import annotations

import os
from typing import Any, Final, Iterable, Mapping, Optional, Sequence, Tuple, Union

_Bytes = Union[bytes, bytearray, memoryview]
_Path = Union[str, "os.PathLike[str]"]
_Classes = Union[str, Iterable[str]]
_Tool = Union[str, Tuple[str, _Classes]]
_EnvelopeLike = Union["Envelope", _Bytes, str]
_Trusted = Union["PublicKey", _Path, Iterable[Union["PublicKey", _Path]]]
_ChainLike = Union["Chain", _EnvelopeLike, Sequence[_EnvelopeLike]]
"""One envelope, a Chain, chain text (base64url envelopes joined by '.'), or a list of
envelopes root first."""
_ApprovalLike = Union["Approval", _Bytes, str]
_RecordLike = Union["Record", _Bytes, str]
_ApprovalRule = Tuple[_Classes, int, Sequence["PublicKey"]]
"""(classes, m, approvers): calls of those classes need m distinct approvals from the
approvers' keys (1 <= m <= len(approvers) <= 16)."""
_Ancestor = Tuple[Union[_Bytes, str], int, int]
_Json = Union[None, bool, int, str, Sequence["_Json"], Mapping[str, "_Json"]]
_Args = Union[Mapping[str, _Json], str]
"""Args in their JSON form (docs/spec.md §16), as a dict of member name to constraint, or as
JSON text: {"amount": {"range": [0, 500]}, "note": {"optional": {"max_len": 200}}}."""
_Budget = Tuple[str, str, int]
"""(tool pattern, member, limit): the member's amounts over every call add up to at most
limit (1 <= limit <= 2**53 - 1)."""
_Waiver = Tuple[str, _Args]
"""(tool pattern, args): a call of that tool whose body satisfies args (read open) needs no
approval under the rule."""

MAX_ENVELOPE_LEN: Final[int]
REASONS: Final[list[str]]

class LaissezError(Exception):
    """Base of every laissez error."""

    reason: str
    """A stable snake_case code: the contract's reason codes where one applies."""

class Denied(LaissezError):
    """Raised by Verifier.check for a denial."""

    detail: Optional[str]
    decision: Decision

class InvalidKey(LaissezError):
    """A key or key file that cannot be used (e.g. reason "loose_permissions")."""

class SignError(LaissezError):
    """Claims the signer refuses, or a call an invocation cannot sign. Bad args name the
    pattern and the path in the message (reason: the args reader's code, e.g. range_order,
    not_an_integer, duplicate_member, not_json)."""

    field: Optional[str]
    """delegate's not_attenuated: the field the child widens (aud, exp, tools, args, ...)."""
    path: Optional[str]
    """delegate's not_attenuated for args: the member whose constraint is wider ("amount",
    "items.each", or "body" for the args as a whole)."""

class LedgerError(LaissezError):
    """The use ledger did not answer (e.g. "ledger_unavailable", "lease_not_held")."""

class SecretKey:
    """An Ed25519 secret key. Never printed."""

    @staticmethod
    def generate() -> SecretKey: ...
    @staticmethod
    def from_pem(pem: Union[str, _Bytes]) -> SecretKey: ...
    @staticmethod
    def load(path: _Path) -> SecretKey:
        """Reads a key file with the CLI's rules: a regular file of this user, mode 0600."""
    def save(self, path: _Path, *, force: bool = False) -> os.PathLike[str]:
        """Writes path (0600) and path.pub, as `laissez keygen`; returns path.pub."""
    def to_pem(self) -> str: ...
    def public_key(self) -> PublicKey: ...
    @property
    def kid(self) -> str:
        """16 lowercase hex digits."""

class PublicKey:
    """A trusted Ed25519 public key, checked when made."""

    @staticmethod
    def from_pem(pem: Union[str, _Bytes]) -> PublicKey:
        """Exactly one SPKI PEM block."""
    @staticmethod
    def from_bytes(raw: _Bytes) -> PublicKey: ...
    @staticmethod
    def parse_trust(pem: Union[str, _Bytes]) -> list[PublicKey]:
        """Every key of a trust file's text (one or more SPKI PEM blocks)."""
    @staticmethod
    def load_trust(path: _Path) -> list[PublicKey]: ...
    def to_pem(self) -> str: ...
    def __bytes__(self) -> bytes: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    @property
    def kid(self) -> str: ...

class Envelope:
    """A signed envelope's bytes, exactly as signed. Envelope(data) reads raw bytes or
    base64url text and checks the outer structure; it verifies nothing."""

    def __init__(self, data: Union[_Bytes, str]) -> None: ...
    def __bytes__(self) -> bytes: ...
    def __len__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    @property
    def text(self) -> str:
        """base64url without padding."""
    @property
    def claims(self) -> dict[str, Any]:
        """Decoded without verifying, by the contract's names (as `laissez inspect --json`)."""
    @property
    def kid(self) -> str: ...

class Invocation:
    """The holder's signature over one call."""

    def __bytes__(self) -> bytes: ...
    def __eq__(self, other: object) -> bool: ...
    @property
    def text(self) -> str: ...
    @property
    def kid(self) -> str: ...
    @property
    def iat(self) -> int: ...

def sign(
    key: SecretKey,
    *,
    agent: str,
    aud: Union[str, Sequence[str]],
    tools: Union[_Tool, Sequence[_Tool]],
    classes: Optional[_Classes] = None,
    max_uses: int = 1,
    ttl: Union[int, str, None] = None,
    nbf: Optional[int] = None,
    iss: Optional[str] = None,
    obo: Optional[str] = None,
    session: Optional[str] = None,
    holder: Optional[PublicKey] = None,
    approval: Optional[_ApprovalRule] = None,
    args: Optional[Mapping[str, _Args]] = None,
    budgets: Optional[Sequence[_Budget]] = None,
    unless: Optional[Sequence[_Waiver]] = None,
) -> Envelope:
    """Signs an envelope as `laissez sign` (defaults: classes "read", ttl 5 min, nbf now).
    approval=(classes, m, approvers): calls of those classes need m approvals, except those a
    waiver of unless=[(pattern, args)] covers. args={pattern: args}: that tool grant holds
    only for bodies that satisfy args (a pattern no tool names: args_without_tool).
    budgets=[(pattern, member, limit)]: caps the sum of member over every call."""

def invoke(
    key: SecretKey,
    envelope: _EnvelopeLike,
    *,
    aud: str,
    message_id: str,
    tool: str,
    cls: str,
    body: Optional[_Bytes] = None,
    now: Optional[int] = None,
) -> Invocation:
    """Signs the holder's invocation for one call, as `laissez invoke`."""

class Approval:
    """A person's signature over one exact call. Approval(data) reads one received
    (raw bytes or base64url text), unverified."""

    def __init__(self, data: Union[_Bytes, str]) -> None: ...
    def __bytes__(self) -> bytes: ...
    def __len__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    @property
    def text(self) -> str:
        """base64url: the laissez-approvals header's text, `laissez verify --approval`."""
    @property
    def kid(self) -> str:
        """The approver key's kid."""

def approve(
    key: SecretKey,
    envelope: _ChainLike,
    *,
    aud: str,
    message_id: str,
    tool: str,
    cls: str,
    body: Optional[_Bytes] = None,
    ttl: Union[int, str, None] = None,
    by: Optional[str] = None,
    now: Optional[int] = None,
) -> Approval:
    """Signs an approval of exactly this call, as `laissez approve` (ttl default 15 min).
    SignError reasons: not_required, not_an_approver, lifetime, malformed, ...
    For a chain the approval is over the leaf and the leaf's own rule is checked."""

class Chain:
    """A delegation chain, root first. Chain(text or [envelopes]) reads one, unverified."""

    def __init__(self, data: _ChainLike) -> None: ...
    def __len__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    @property
    def text(self) -> str:
        """Each envelope's base64url, joined by '.', root first."""
    @property
    def links(self) -> list[Envelope]: ...
    @property
    def leaf(self) -> Envelope:
        """The envelope calls run under (the laissez-envelope header)."""
    @property
    def ancestors(self) -> list[Envelope]:
        """The leaf's ancestors, root first (the laissez-chain header)."""
    @property
    def claims(self) -> list[dict[str, Any]]:
        """Each envelope's claims, root first, decoded without verifying."""

def delegate(
    holder_key: SecretKey,
    parent: _ChainLike,
    *,
    agent: str,
    tools: Union[_Tool, Sequence[_Tool]],
    holder: PublicKey,
    aud: Union[str, Sequence[str], None] = None,
    classes: Optional[_Classes] = None,
    max_uses: int = 1,
    ttl: Union[int, str, None] = None,
    obo: Optional[str] = None,
    session: Optional[str] = None,
    approval: Optional[_ApprovalRule] = None,
    args: Optional[Mapping[str, _Args]] = None,
    budgets: Optional[Sequence[_Budget]] = None,
    unless: Optional[Sequence[_Waiver]] = None,
) -> Chain:
    """Signs a narrower child of the parent's leaf for agent (bound to holder) with the
    parent's holder key; args, budgets and unless as sign takes them. SignError reasons:
    not_attenuated (.field names it; for args .path names the member), chain_too_long,
    not_the_holder, parent_not_holder_bound, ..."""

class Record:
    """A signed revocation record. Record(data) reads one received, unverified."""

    def __init__(self, data: Union[_Bytes, str]) -> None: ...
    def __bytes__(self) -> bytes: ...
    def __eq__(self, other: object) -> bool: ...
    @property
    def text(self) -> str:
        """base64url: one line of a `laissez verify --revocations` file."""
    @property
    def kid(self) -> str: ...
    @property
    def iat(self) -> int: ...
    @property
    def until(self) -> int: ...
    @property
    def entries(self) -> list[Tuple[Optional[str], Optional[str]]]:
        """(kind, value): kind cti, kid, sub, sid or obo."""

def revoke(
    key: SecretKey,
    *,
    cti: Union[str, _Bytes, Sequence[Union[str, _Bytes]], None] = None,
    kid: Union[str, PublicKey, Sequence[Union[str, PublicKey]], None] = None,
    agent: Union[str, Sequence[str], None] = None,
    session: Union[str, Sequence[str], None] = None,
    obo: Union[str, Sequence[str], None] = None,
    keep: Union[int, str, None] = None,
    now: Optional[int] = None,
) -> Record:
    """Signs a revocation record, as `laissez revoke` (keep default and most 7 days)."""

class RevocationSet:
    """The records a worker holds, verified against its trusted issuer keys."""

    def __init__(
        self,
        trusted: _Trusted,
        records: Optional[Iterable[_RecordLike]] = None,
        *,
        now: Optional[int] = None,
    ) -> None: ...
    def add(self, record: _RecordLike, *, now: Optional[int] = None) -> str:
        """"added", "already_held" or "expired"; LaissezError if it does not verify."""
    def prune(self, *, now: Optional[int] = None) -> int: ...
    def __len__(self) -> int: ...

class Decision:
    """A frozen verdict; truthy when allowed."""

    @property
    def allowed(self) -> bool: ...
    @property
    def reason(self) -> Optional[str]: ...
    @property
    def detail(self) -> Optional[str]:
        """More about a denial, e.g. the member path for arguments_not_granted."""
    @property
    def kid(self) -> Optional[str]: ...
    @property
    def claims(self) -> Optional[dict[str, Any]]:
        """The (leaf's) claims once the signatures held."""
    @property
    def chain(self) -> Optional[list[dict[str, Any]]]:
        """Every envelope's claims, root first (one when not delegated)."""
    @property
    def approved_by(self) -> list[str]:
        """Kids of the approvers whose approvals counted."""
    @property
    def ancestors(self) -> list[Tuple[str, int, int]]:
        """(cti hex, max_uses, expires_at) of each ancestor, root first: Ledger.begin's."""
    @property
    def use(self) -> Optional[int]: ...
    def __bool__(self) -> bool: ...
    def __eq__(self, other: object) -> bool: ...

class Verifier:
    def __init__(
        self,
        trusted: _Trusted,
        audience: str,
        *,
        leeway: int = 5,
        max_lifetime: int = 3600,
        require_holder: bool = False,
        agent: Optional[str] = None,
        tools: Optional[dict[str, str]] = None,
        ledger: Optional[Ledger] = None,
        approvers: Optional[_Trusted] = None,
        require_approval: Optional[_Classes] = None,
        revocations: Union[RevocationSet, Iterable[_RecordLike], None] = None,
    ) -> None: ...
    def verify(
        self,
        envelope: _ChainLike,
        *,
        tool: Optional[str] = None,
        cls: Optional[str] = None,
        message_id: Optional[str] = None,
        body: Optional[_Bytes] = None,
        invocation: Union[Invocation, _Bytes, str, None] = None,
        approvals: Optional[Sequence[_ApprovalLike]] = None,
        now: Optional[int] = None,
    ) -> Decision:
        """Every check of the contract, in its order; never raises for a denial. A body
        without message_id is read for args, budgets and waivers (arguments_not_granted,
        detail the member path like "items[2].sku"); with a ledger an allowed call spends
        its budgets (budget_exhausted)."""
    def check(
        self,
        envelope: _ChainLike,
        *,
        tool: Optional[str] = None,
        cls: Optional[str] = None,
        message_id: Optional[str] = None,
        body: Optional[_Bytes] = None,
        invocation: Union[Invocation, _Bytes, str, None] = None,
        approvals: Optional[Sequence[_ApprovalLike]] = None,
        now: Optional[int] = None,
    ) -> Decision:
        """As verify, but raises Denied unless allowed."""
    @property
    def audience(self) -> str: ...

class Outcome:
    """What Ledger.begin answered; truthy when granted."""

    @property
    def code(self) -> str:
        """granted, in_flight, replayed, uses_exhausted or abandoned."""
    @property
    def granted(self) -> bool: ...
    @property
    def other_call(self) -> bool: ...
    @property
    def use(self) -> Optional[int]: ...
    @property
    def lease(self) -> Optional[Lease]: ...
    @property
    def taken_over(self) -> bool: ...
    def __bool__(self) -> bool: ...

class Lease:
    """A lease as begin granted it (keeps a delegated use's chain root); bytes() gives its
    16-byte token."""

    def __bytes__(self) -> bytes: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    @property
    def root(self) -> Optional[str]:
        """The chain's root cti (hex) for a delegated use, else None."""

class Ledger:
    def __init__(
        self,
        location: _Path,
        *,
        ca: Optional[_Path] = None,
        cert: Optional[_Path] = None,
        key: Optional[_Path] = None,
    ) -> None:
        """A redb file path, or a redis://, rediss://, redis+cluster:// or rediss+cluster://
        URL. For rediss: `ca` replaces the system's roots; `cert` and `key` are the client
        certificate of mutual TLS (PEM files)."""
    @staticmethod
    def memory() -> Ledger: ...
    def begin(
        self,
        cti: Union[_Bytes, str],
        message_id: str,
        *,
        max_uses: int,
        expires_at: int,
        tool: str,
        cls: str,
        lease: float = 30.0,
        ancestors: Optional[Sequence[_Ancestor]] = None,
    ) -> Outcome: ...
    def complete(
        self, cti: Union[_Bytes, str], message_id: str, lease: Union[Lease, _Bytes]
    ) -> None: ...
    def release(
        self, cti: Union[_Bytes, str], message_id: str, lease: Union[Lease, _Bytes]
    ) -> None: ...

class Worker:
    """One worker's gate and ledger: the AMQP middleware's own gatekeeper, for a worker that
    receives and settles deliveries with its own client (laissez.pika, laissez.aio_pika)."""

    def __init__(
        self,
        trusted: _Trusted,
        audience: str,
        tools: dict[str, str],
        ledger: Ledger,
        *,
        queue: Optional[str] = None,
        leeway: int = 5,
        max_lifetime: int = 3600,
        require_holder: bool = False,
        approvers: Optional[_Trusted] = None,
        require_approval: Optional[_Classes] = None,
        revocations: Optional[RevocationSet] = None,
        follow_revocations: Optional[str] = None,
        revocation_stream: str = "laissez.revocations",
        catch_up_timeout: float = 30.0,
        lease: Union[int, str, None] = None,
        on_error: str = "dead_letter",
        requeue_after: float = 5.0,
        retry_delays: Tuple[float, float] = (0.25, 30.0),
    ) -> None:
        """follow_revocations: an AMQP URL whose revocation_stream the worker follows (caught
        up before this returns); or revocations, a RevocationSet. on_error: "dead_letter" or
        "requeue" (after requeue_after seconds; never for the destructive class)."""
    def admit(
        self,
        headers: Optional[Mapping[str, Any]],
        body: _Bytes,
        message_id: Optional[str] = None,
    ) -> Admission:
        """Reads the laissez-* headers, asks the gate and holds the use, as laissez consume
        does; never raises for a refusal."""
    def stop(self) -> None:
        """Admissions waiting for the revocation follower answer "requeue"."""
    @property
    def stats(self) -> dict[str, int]:
        """received, handled, denied, parked, requeued, handler_failures."""
    @property
    def revocations_not_ready(self) -> Optional[str]: ...
    @property
    def revocations_held(self) -> Optional[int]:
        """Records held (from the set or the stream); None without revocations."""
    @property
    def audience(self) -> str: ...

class Admission:
    """One delivery as a Worker admitted it: action "run" (call the handler, then finish),
    "dead_letter" (decision says why) or "requeue" (after retry_after seconds)."""

    @property
    def action(self) -> str: ...
    @property
    def decision(self) -> Optional[dict[str, Any]]:
        """The laissez consume line's keys, and detail; None for a requeue."""
    @property
    def decision_line(self) -> Optional[str]:
        """The JSON line laissez consume prints; None for a requeue."""
    @property
    def retry_after(self) -> Optional[float]: ...
    @property
    def retry_reason(self) -> Optional[str]:
        """in_flight, ledger_unavailable or shutdown, for a requeue."""
    @property
    def agent(self) -> Optional[str]: ...
    @property
    def chain(self) -> Optional[list[str]]: ...
    @property
    def obo(self) -> Optional[str]: ...
    @property
    def session(self) -> Optional[str]: ...
    @property
    def tool(self) -> Optional[str]: ...
    @property
    def cls(self) -> Optional[str]: ...
    @property
    def cti(self) -> Optional[str]: ...
    @property
    def kid(self) -> Optional[str]: ...
    @property
    def use(self) -> Optional[int]: ...
    @property
    def taken_over(self) -> Optional[bool]: ...
    @property
    def message_id(self) -> Optional[str]: ...
    @property
    def approved_by(self) -> Optional[list[str]]: ...
    def finish(
        self, outcome: Union[bool, str, None] = None
    ) -> Union[str, Tuple[str, float]]:
        """True (or None): handled; False or the error's text: failed. Returns "ack",
        "dead_letter" or ("requeue", seconds)."""

def log_to_stderr() -> bool:
    """The workers' log (one laissez::audit event per decision) on stderr, as laissez consume
    writes it; False when a log subscriber was installed already."""

def _topology(
    queue: str, *, quorum: bool, delivery_limit: int
) -> Tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(names, arguments) of queue's standard topology, from the Rust Topology that laissez
    declare declares: names of queue, dead_letter_exchange, dead_letter_queue and retry_queue;
    arguments (str or int values; Any, as the AMQP clients' field tables take them) of the
    dead_letter_queue, the queue and the retry_queue. ValueError for an empty queue name or a
    delivery_limit not from 1 to 2**31-1."""
