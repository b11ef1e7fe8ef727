"""The README's Python section runs as written: its ```python blocks, in order, in one
namespace, against the real RabbitMQ for the publishing block."""

from __future__ import annotations

import re

import pika

from conftest import AMQP_URL, REPO


def readme_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## In Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_python_section_runs():
    blocks = readme_blocks()
    assert len(blocks) == 3, "the README's Python section has its three examples"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block.replace("amqp://guest:guest@127.0.0.1:5672/%2f", AMQP_URL),
                     "README.md", "exec"), namespace)
    assert namespace["decision"].use == 1
    assert namespace["approved"].approved_by == [namespace["alice"].kid]
    assert len(namespace["delegated"].chain) == 2 and namespace["revoked"].reason == "revoked"
    # The published call is on the queue with what a worker needs; take it off again.
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    try:
        found = None
        while True:
            method, props, body = channel.basic_get("billing-queue", auto_ack=True)
            if method is None:
                break
            if props.message_id == namespace["message_id"]:
                found = props
        assert found is not None
        assert found.headers["laissez-envelope"] == bytes(namespace["envelope"])
        assert found.headers["laissez-invocation"]
    finally:
        channel.queue_delete("billing-queue", if_empty=True)
        connection.close()
