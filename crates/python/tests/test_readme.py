"""The Python examples run as written: the README's, and the ```python blocks of
docs/guide/python.md, in order, in one namespace, against the real RabbitMQ for the publishing
block."""

from __future__ import annotations

import re

import pika

from conftest import AMQP_URL, REPO


def python_blocks(relative: str) -> list[str]:
    """The ```python blocks of a markdown file of the repository, in order."""
    text = (REPO / relative).read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_python_example_runs():
    blocks = python_blocks("README.md")
    assert len(blocks) == 1, "the README has one Python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["worker"].audience == "billing-queue"


def test_the_python_guide_runs():
    blocks = python_blocks("docs/guide/python.md")
    assert len(blocks) == 5, "the Python guide has its five examples"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block.replace("amqp://guest:guest@127.0.0.1:5672/%2f", AMQP_URL),
                     "docs/guide/python.md", "exec"), namespace)
    assert namespace["decision"].use == 1
    assert namespace["approved"].approved_by == [namespace["alice"].kid]
    assert len(namespace["delegated"].chain) == 2 and namespace["revoked"].reason == "revoked"
    assert namespace["paid"].approved_by == [namespace["alice"].kid]
    assert namespace["exhausted"].reason == "budget_exhausted"
    # The published call ran in the guide's worker, once, with what a worker needs.
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    try:
        [call] = namespace["handled"]
        assert call.message_id == namespace["message_id"] and call.use == 1
        assert call.headers["laissez-envelope"] == bytes(namespace["envelope"])
        assert call.headers["laissez-invocation"] and call.tool == "crm.ticket.close"
        assert channel.queue_declare("billing-queue", passive=True).method.message_count == 0
    finally:
        channel.queue_delete("billing-queue", if_empty=True)
        # The rest of the topology the guide declares (declare_topology).
        for queue in ("billing-queue.dlq", "billing-queue.retry"):
            channel.queue_delete(queue, if_empty=True)
        channel.exchange_delete("billing-queue.dlx")
        connection.close()
