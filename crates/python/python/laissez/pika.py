"""Publishing calls, and declaring a worker's queues, with pika (``pip install 'laissez[pika]'``).

``publish_call`` sets every header of ``docs/spec.md`` §5 that applies, signs the holder's
invocation when the envelope is holder-bound, and publishes mandatory with publisher
confirms: it returns only once the broker has taken the message, and raises otherwise.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Optional, Sequence, Union

from laissez._laissez import Approval, Chain, Envelope, SecretKey, invoke

if TYPE_CHECKING:  # pika is optional: only the caller's channel is needed at run time
    from pika.adapters.blocking_connection import BlockingChannel

__all__ = ["declare_topology", "publish_call"]


def declare_topology(
    channel: "BlockingChannel",
    queue: str,
    *,
    quorum: bool = False,
    delivery_limit: int = 20,
) -> dict[str, str]:
    """Declares ``queue``'s standard topology, as ``laissez declare`` and the Rust
    ``Topology`` do (``docs/spec.md`` §9), all durable: the fanout exchange ``QUEUE.dlx``, the
    queue ``QUEUE.dlq`` bound to it (where refused messages and calls parked for approval
    land), ``queue`` dead-lettering to ``QUEUE.dlx``, and the retry queue ``QUEUE.retry``
    dead-lettering back to ``queue`` through the default exchange. ``quorum`` makes them quorum
    queues, ``queue`` with ``x-delivery-limit`` = ``delivery_limit``.

    Idempotent: declaring again changes nothing. An existing queue or exchange of these names
    with other arguments makes the broker close the channel (pika's
    ``ChannelClosedByBroker``, 406 PRECONDITION_FAILED, naming the argument); nothing existing
    is changed. Returns the names: ``queue``, ``dead_letter_exchange``,
    ``dead_letter_queue``, ``retry_queue``.
    """
    if not queue:
        raise ValueError("the queue name must not be empty")
    if isinstance(delivery_limit, bool) or not isinstance(delivery_limit, int) or not (
        0 < delivery_limit <= 2**31 - 1
    ):
        raise ValueError("delivery_limit is an integer from 1 to 2**31-1")
    names = {
        "queue": queue,
        "dead_letter_exchange": f"{queue}.dlx",
        "dead_letter_queue": f"{queue}.dlq",
        "retry_queue": f"{queue}.retry",
    }
    typed: dict[str, object] = {"x-queue-type": "quorum"} if quorum else {}
    work: dict[str, object] = {"x-dead-letter-exchange": names["dead_letter_exchange"], **typed}
    if quorum:
        work["x-delivery-limit"] = delivery_limit
    retry: dict[str, object] = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
        **typed,
    }
    if quorum:
        retry["x-dead-letter-strategy"] = "at-least-once"
        retry["x-overflow"] = "reject-publish"
    channel.exchange_declare(names["dead_letter_exchange"], exchange_type="fanout", durable=True)
    channel.queue_declare(names["dead_letter_queue"], durable=True, arguments=typed or None)
    channel.queue_bind(names["dead_letter_queue"], names["dead_letter_exchange"], routing_key="")
    channel.queue_declare(queue, durable=True, arguments=work)
    channel.queue_declare(names["retry_queue"], durable=True, arguments=retry)
    return names


def _confirming(channel: "BlockingChannel") -> None:
    # pika keeps no public flag; BlockingChannel.confirm_delivery() may be called only once.
    if not getattr(channel, "_delivery_confirmation", False):
        channel.confirm_delivery()


def publish_call(
    channel: "BlockingChannel",
    queue: str,
    envelope: Union[Envelope, Chain, bytes, str, Sequence[Union[Envelope, bytes, str]]],
    tool: str,
    body: bytes,
    agent_key: Optional[SecretKey] = None,
    message_id: Optional[str] = None,
    *,
    cls: Optional[str] = None,
    aud: Optional[str] = None,
    exchange: str = "",
    approvals: Optional[Sequence[Union[Approval, bytes, str]]] = None,
    now: Optional[int] = None,
) -> str:
    """Publishes one call of ``tool`` with ``body`` under ``envelope`` to ``queue``.

    Sets ``message_id`` (a fresh UUID when not given) and the headers ``laissez-envelope``
    (raw bytes), ``laissez-tool``, ``laissez-class`` (when ``cls`` is given) and, for a
    holder-bound envelope, ``laissez-invocation``: signed with ``agent_key`` over exactly this
    call, which needs ``cls`` (the worker's class for the tool) and the worker's audience
    ``aud`` (default: the envelope's only audience, or else ``queue`` when the envelope lists
    it). Publishes to ``exchange`` (default: the default exchange, routing key ``queue``),
    mandatory, with publisher confirms. Returns the message id.

    ``envelope`` may be a delegation chain (a ``Chain``, chain text joined by ``.``, or a list
    of envelopes root first): the leaf goes in ``laissez-envelope``, its ancestors, root
    first, in ``laissez-chain``, and the invocation is signed over the leaf. ``approvals``
    (``Approval``, raw bytes or base64url text; at most 16) go in ``laissez-approvals`` as raw
    bytes: approvals are signed over the message id, so pass the same ``message_id``.

    Raises ``ValueError`` for a holder-bound envelope without ``agent_key`` or ``cls``,
    ``laissez.SignError`` when the envelope does not grant the call, and pika's
    ``UnroutableError``/``NackError`` when the broker does not take the message.
    """
    import pika  # the optional dependency, imported when used

    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    body = bytes(body)
    chain = envelope if isinstance(envelope, Chain) else Chain(envelope)
    env = chain.leaf
    message_id = message_id if message_id is not None else uuid.uuid4().hex
    headers: dict[str, object] = {"laissez-envelope": bytes(env), "laissez-tool": tool}
    if len(chain) > 1:
        headers["laissez-chain"] = [bytes(link) for link in chain.ancestors]
    if approvals is not None:
        if isinstance(approvals, (str, bytes, bytearray, memoryview, Approval)):
            raise TypeError("approvals is a list of approvals, not one")
        if len(approvals) > 16:
            raise ValueError("at most 16 approvals come with one call")
        headers["laissez-approvals"] = [bytes(Approval(a)) if not isinstance(a, Approval)
                                        else bytes(a) for a in approvals]
    if cls is not None:
        headers["laissez-class"] = cls
    claims = env.claims
    if claims.get("cnf") is not None:
        if agent_key is None:
            raise ValueError("the envelope is holder-bound: pass agent_key to sign the call")
        if cls is None:
            raise ValueError("the envelope is holder-bound: pass cls, the tool's class")
        if aud is None:
            audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
            if len(audiences) == 1:
                aud = audiences[0]
            elif queue in audiences:
                aud = queue
            else:
                raise ValueError("the envelope lists several audiences: pass aud")
        invocation = invoke(
            agent_key, env, aud=aud, message_id=message_id, tool=tool, cls=cls,
            body=body, now=now,
        )
        headers["laissez-invocation"] = bytes(invocation)
    _confirming(channel)
    channel.basic_publish(
        exchange=exchange,
        routing_key=queue,
        body=body,
        properties=pika.BasicProperties(
            message_id=message_id, headers=headers, delivery_mode=2
        ),
        mandatory=True,
    )
    return message_id
