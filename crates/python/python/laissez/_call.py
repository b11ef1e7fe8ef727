"""What a worker helper hands its handler, and what both helpers share: the ``Call`` (an
admitted delivery's authorised values and its body), how a handler's failure reaches the
``Worker``, and the revocation stream's declaration (``docs/spec.md`` §14). Nothing here
decides: the ``Worker`` (the middleware's own gatekeeper) does."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Optional, TypeVar

from laissez._laissez import Admission

__all__ = ["Call"]

LOG = logging.getLogger("laissez")

# The revocation stream's arguments, exactly as `laissez revoke --amqp` declares it.
STREAM_ARGUMENTS: dict[str, Any] = {"x-queue-type": "stream", "x-max-age": "8D"}


@dataclass(frozen=True)
class Call:
    """One allowed delivery, its use held: what the handler acts on. The authorised values
    come from the ``Admission`` (the verified envelope and the worker's catalogue), never from
    the message's own headers."""

    admission: Admission
    body: bytes
    headers: Mapping[str, Any]
    redelivered: bool

    @property
    def agent(self) -> str:
        return _known(self.admission.agent)

    @property
    def chain(self) -> list[str]:
        return _known(self.admission.chain)

    @property
    def obo(self) -> Optional[str]:
        return self.admission.obo

    @property
    def session(self) -> Optional[str]:
        return self.admission.session

    @property
    def tool(self) -> str:
        return _known(self.admission.tool)

    @property
    def cls(self) -> str:
        return _known(self.admission.cls)

    @property
    def cti(self) -> str:
        return _known(self.admission.cti)

    @property
    def kid(self) -> str:
        return _known(self.admission.kid)

    @property
    def use(self) -> int:
        return _known(self.admission.use)

    @property
    def taken_over(self) -> bool:
        return _known(self.admission.taken_over)

    @property
    def message_id(self) -> str:
        return _known(self.admission.message_id)

    @property
    def approved_by(self) -> list[str]:
        return _known(self.admission.approved_by)


_T = TypeVar("_T")


def _known(value: Optional[_T]) -> _T:
    # An admission to run has every authorised value; only a refusal lacks them.
    if value is None:
        raise ValueError("not an admission to run")
    return value


def failure(error: BaseException) -> str:
    """A handler's failure as the ``Worker`` takes it: the error's text."""
    text = f"{type(error).__name__}: {error}"
    LOG.warning("laissez: handler failed: %s", text)
    return text
