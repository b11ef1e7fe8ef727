"""Type stubs of the Rust extension module (crates/python/src)."""

from __future__ import annotations

import os
from typing import Any, Final, Iterable, Optional, Sequence, Tuple, Union

_Bytes = Union[bytes, bytearray, memoryview]
_Path = Union[str, "os.PathLike[str]"]
_Classes = Union[str, Iterable[str]]
_Tool = Union[str, Tuple[str, _Classes]]
_EnvelopeLike = Union["Envelope", _Bytes, str]
_Trusted = Union["PublicKey", _Path, Iterable[Union["PublicKey", _Path]]]

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
    """Claims the signer refuses, or a call an invocation cannot sign."""

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
) -> Envelope:
    """Signs an envelope as `laissez sign` (defaults: classes "read", ttl 5 min, nbf now)."""

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

class Decision:
    """A frozen verdict; truthy when allowed."""

    @property
    def allowed(self) -> bool: ...
    @property
    def reason(self) -> Optional[str]: ...
    @property
    def detail(self) -> Optional[str]: ...
    @property
    def kid(self) -> Optional[str]: ...
    @property
    def claims(self) -> Optional[dict[str, Any]]: ...
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
    ) -> None: ...
    def verify(
        self,
        envelope: _EnvelopeLike,
        *,
        tool: Optional[str] = None,
        cls: Optional[str] = None,
        message_id: Optional[str] = None,
        body: Optional[_Bytes] = None,
        invocation: Union[Invocation, _Bytes, str, None] = None,
        now: Optional[int] = None,
    ) -> Decision:
        """Every check of the contract, in its order; never raises for a denial."""
    def check(
        self,
        envelope: _EnvelopeLike,
        *,
        tool: Optional[str] = None,
        cls: Optional[str] = None,
        message_id: Optional[str] = None,
        body: Optional[_Bytes] = None,
        invocation: Union[Invocation, _Bytes, str, None] = None,
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
    def lease(self) -> Optional[bytes]: ...
    @property
    def taken_over(self) -> bool: ...
    def __bool__(self) -> bool: ...

class Ledger:
    def __init__(self, location: _Path) -> None:
        """A redb file path, or a redis:// / rediss:// URL."""
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
    ) -> Outcome: ...
    def complete(self, cti: Union[_Bytes, str], message_id: str, lease: _Bytes) -> None: ...
    def release(self, cti: Union[_Bytes, str], message_id: str, lease: _Bytes) -> None: ...
