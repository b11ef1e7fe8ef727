"""`laissez approve --serve` in a real headless browser (Debian's chromium and
chromium-driver), on the real RabbitMQ (docs/approvals.md):

(a) a destructive call parked `approval_required` by `laissez consume` is listed on the
    page; a person clicks Approve; the next `laissez consume` runs it, exactly once;
(b) a crafted body with `<script>` and `<img onerror>` is shown as text: no element of the
    publisher's is in the page, no script of it ran, no alert is open.

The broker is LAISSEZ_TEST_AMQP_URL, else guest@127.0.0.1:5672 (scripts/test starts it).
"""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pika
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from conftest import laissez_bin, make_key

AMQP_URL = os.environ.get("LAISSEZ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
AGENT = "spiffe://acme.example/agent/cleaner"
TOOLS = '[tools]\n"crm.read" = "read"\n"crm.drop" = "destructive"\n'
RECORD = 'echo "ran $LAISSEZ_MESSAGE_ID" >> runs.txt'


class Worker:
    """A fresh work queue with the standard topology, an issuer, an approver `a`, and the
    commands of the worker and of the approver on it."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.queue = f"laissez-py-page-{uuid.uuid4().hex[:12]}"
        self.stream = f"{self.queue}.revocations"
        self.issuer = make_key(directory, "issuer")
        self.approver = make_key(directory, "a")
        (directory / "tools.toml").write_text(TOOLS)
        self.run("declare", "--amqp", AMQP_URL, "--queue", self.queue)
        self.envelope = self.run(
            "sign", "--key", str(self.issuer.pem), "--agent", AGENT, "--aud", self.queue,
            "--tool", "crm.*", "--classes", "read+write+destructive", "--max-uses", "3",
            "--obo", "alice", "--approval", "destructive", "--approvals", "1",
            "--approver", str(self.approver.pub),
        ).strip()

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [laissez_bin(), *args], cwd=self.dir, capture_output=True, check=False
        )
        assert result.returncode == 0, (args, result.stderr.decode())
        return result.stdout.decode()

    def publish(self, message_id: str, body: bytes) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish(
                exchange="",
                routing_key=self.queue,
                body=body,
                properties=pika.BasicProperties(
                    message_id=message_id,
                    delivery_mode=2,
                    content_type="application/json",
                    headers={
                        "laissez-envelope": self.envelope,
                        "laissez-tool": "crm.drop",
                        "laissez-class": "destructive",
                    },
                ),
                mandatory=True,
            )
        finally:
            connection.close()

    def consume(self) -> list[dict]:
        """One `laissez consume` run until idle: its decision lines."""
        out = self.run(
            "consume", "--amqp", AMQP_URL, "--queue", self.queue, "--trust",
            str(self.issuer.pub), "--aud", self.queue, "--tools", "tools.toml", "--approvers",
            str(self.approver.pub), "--ledger", "uses.redb", "--revocations-stream",
            self.stream, "--exit-when-idle", "2s", "--exec", "sh", "-c", RECORD,
        )
        lines = [json.loads(line) for line in out.splitlines()]
        return [l for l in lines if l.get("outcome") not in ("handled", "handler_failed")]

    def runs(self) -> list[str]:
        path = self.dir / "runs.txt"
        return path.read_text().splitlines() if path.exists() else []

    def serve(self) -> tuple[subprocess.Popen, str]:
        """`laissez approve --serve 127.0.0.1:0`, and the address it bound."""
        log = self.dir / "serve.log"
        with open(log, "wb") as stderr:
            server = subprocess.Popen(
                [
                    laissez_bin(), "approve", "--key", str(self.approver.pem), "--amqp",
                    AMQP_URL, "--from", f"{self.queue}.dlq", "--trust", str(self.issuer.pub),
                    "--aud", self.queue, "--tools", "tools.toml", "--approvers",
                    str(self.approver.pub), "--ledger", "uses.redb", "--revocations-stream",
                    self.stream, "--serve", "127.0.0.1:0",
                ],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        # Its stderr goes to a file (read here, never a pipe that could fill and block it).
        prefix = "laissez: approval page on http://"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            for line in log.read_text().splitlines():
                if line.startswith(prefix):
                    return server, line[len(prefix):].split("/")[0]
            time.sleep(0.1)
        server.kill()
        server.wait()
        raise AssertionError("no approval page: " + log.read_text())

    def delete(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            channel = connection.channel()
            for queue in ("", ".dlq", ".retry", ".rejected"):
                channel.queue_delete(self.queue + queue)
            channel.exchange_delete(self.queue + ".dlx")
            channel.queue_delete(self.stream)
        finally:
            connection.close()


@pytest.fixture
def worker(tmp_path):
    w = Worker(tmp_path)
    yield w
    w.delete()


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(browser, text: str) -> None:
    """Waits until the page shows `text`; fails with what it shows instead."""
    try:
        WebDriverWait(browser, 30).until(
            expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), text)
        )
    except TimeoutException:
        shown = browser.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"not {text!r} but {shown!r}") from None


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def test_a_person_approves_a_parked_delete_in_the_browser_and_it_runs_once(worker, browser):
    worker.publish("m-delete", b'{"ticket": 42, "hard_delete": true}')
    decisions = worker.consume()
    assert [d.get("reason") for d in decisions] == ["approval_required"], decisions
    assert worker.runs() == []

    server, addr = worker.serve()
    try:
        browser.get(f"http://{addr}/")
        page = browser.find_element(By.TAG_NAME, "body").text
        assert "message m-delete" in page
        assert "crm.drop (destructive)" in page and AGENT in page and "alice" in page
        assert '"hard_delete": true' in page
        assert "0 of 1 counted" in page
        browser.find_element(By.XPATH, "//button[text()='Approve']").click()
        wait_for(browser, "No parked call awaits approval")
        assert browser.current_url == f"http://{addr}/"
    finally:
        stop(server)

    decisions = worker.consume()
    assert [(d["message_id"], d["allowed"]) for d in decisions] == [("m-delete", True)], decisions
    assert worker.runs() == ["ran m-delete"]
    # Run again: nothing left, nothing runs twice.
    assert worker.consume() == []
    assert worker.runs() == ["ran m-delete"]


def test_a_crafted_body_cannot_inject_script(worker, browser):
    hostile = (
        '{"note": "<script>window.pwnedScript = 1; alert(1)</script>'
        '<img src=x onerror=\\"window.pwnedImg = 1; alert(2)\\">", '
        '"q": "\'><script>window.pwnedAttr = 1</script>"}'
    )
    json.loads(hostile)  # a JSON body the worker reads, shown tidied
    worker.publish("m-<b>hostile</b>", hostile.encode())
    assert [d.get("reason") for d in worker.consume()] == ["approval_required"]

    server, addr = worker.serve()
    try:
        browser.get(f"http://{addr}/")
        # The publisher's text is on the page as text ...
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "<script>window.pwnedScript = 1; alert(1)</script>" in text
        assert "onerror=" in text and "message m-<b>hostile</b>" in text
        # ... and none of it became an element, ran, or opened a dialog.
        for tag in ("script", "img", "b"):
            assert browser.find_elements(By.TAG_NAME, tag) == [], tag
        ran = browser.execute_script(
            "return [typeof window.pwnedScript, typeof window.pwnedImg, typeof window.pwnedAttr]"
        )
        assert ran == ["undefined", "undefined", "undefined"]
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text
        # The forms name the call exactly (the raw message id), and rejecting it works.
        browser.find_element(By.XPATH, "//button[text()='Reject']").click()
        wait_for(browser, "No parked call awaits approval")
    finally:
        stop(server)
    assert worker.consume() == []
    assert worker.runs() == []
