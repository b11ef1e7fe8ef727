"""The sidecar's container image (deploy/container/Containerfile, built by scripts/image): a
static `laissez` binary and nothing else, run as a numeric non-root user, that starts and
consumes from the real RabbitMQ.

scripts/test sets LAISSEZ_STATIC_BIN (the x86_64-unknown-linux-musl binary), LAISSEZ_BIN (the
host's build, which makes keys and envelopes and declares the queue) and LAISSEZ_IMAGE (the
image's name). Where buildah cannot run, it leaves LAISSEZ_IMAGE unset and says why in
LAISSEZ_NO_BUILDAH: the image tests are skipped with that reason, the binary's and the
Containerfile's still run. With neither set, the image tests fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import uuid
from pathlib import Path

import pika
import pytest

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "deploy" / "container" / "Containerfile"
AMQP_URL = os.environ.get("LAISSEZ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
PT_INTERP = 3
PT_DYNAMIC = 2
DT_NEEDED = 1


def required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: scripts/test sets it (see this file's docstring)")
    return value


def image() -> str:
    name = os.environ.get("LAISSEZ_IMAGE")
    if name:
        return name
    reason = os.environ.get("LAISSEZ_NO_BUILDAH")
    if reason:
        pytest.skip(f"buildah cannot run here: {reason}")
    pytest.fail("neither LAISSEZ_IMAGE nor LAISSEZ_NO_BUILDAH is set (scripts/test sets one)")


def run(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (args, result.returncode, result.stderr)
    return result.stdout


def elf_program_headers(data: bytes) -> list[tuple[int, int, int]]:
    """(type, file offset, file size) of each program header of a 64-bit little-endian ELF."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "a 64-bit LE ELF file"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    headers = []
    for i in range(phnum):
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        headers.append((p_type, p_offset, p_filesz))
    return headers


def test_the_binary_is_static():
    binary = Path(required_env("LAISSEZ_STATIC_BIN"))
    data = binary.read_bytes()
    headers = elf_program_headers(data)
    assert headers, "an executable has program headers"
    # No program interpreter: the kernel runs it without ld.so, so no libc is needed.
    assert all(t != PT_INTERP for t, _, _ in headers), "the binary asks for a dynamic loader"
    # A static PIE keeps a dynamic section for its own relocations, but needs no library.
    for p_type, offset, size in headers:
        if p_type == PT_DYNAMIC:
            for at in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", data, at)
                assert tag != DT_NEEDED, f"the binary needs a shared library (DT_NEEDED {value})"
    if shutil.which("file"):
        description = run("file", "--brief", str(binary))
        assert re.search(r"static(-pie)? linked|statically linked", description), description


def containerfile_instructions() -> list[tuple[str, str]]:
    instructions = []
    for line in CONTAINERFILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.endswith("\\"), f"no continued lines, to keep this parse exact: {line}"
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_containerfile_holds_the_binary_alone_as_a_numeric_user():
    instructions = containerfile_instructions()
    keywords = [k for k, _ in instructions]
    assert keywords == ["FROM", "COPY", "USER", "ENTRYPOINT"], instructions
    found = dict(instructions)
    assert found["FROM"] == "scratch", "no base image: nothing is pulled"
    assert found["COPY"] == "laissez /laissez"
    user = re.fullmatch(r"(\d+)(?::(\d+))?", found["USER"])
    assert user, f"USER {found['USER']} is not numeric (scratch has no /etc/passwd)"
    assert int(user[1]) != 0 and (user[2] is None or int(user[2]) != 0), "not root"
    assert json.loads(found["ENTRYPOINT"]) == ["/laissez"], "the exec form, no shell"


@pytest.fixture
def container():
    """A working container of the image, removed afterwards."""
    name = run("buildah", "from", "--pull-never", image()).strip()
    yield name
    run("buildah", "rm", name)


def test_the_image_is_the_binary_and_its_settings(container):
    config = json.loads(run("buildah", "inspect", "--type", "image", image()))["OCIv1"]
    assert config["config"]["User"] == dict(containerfile_instructions())["USER"]
    assert config["config"]["Entrypoint"] == ["/laissez"]
    assert len(config["rootfs"]["diff_ids"]) == 1, "one layer: the binary"
    root = Path(run("buildah", "mount", container).strip())
    try:
        assert sorted(p.name for p in root.iterdir()) == ["laissez"]
        inside = hashlib.sha256((root / "laissez").read_bytes()).hexdigest()
        built = hashlib.sha256(Path(required_env("LAISSEZ_STATIC_BIN")).read_bytes()).hexdigest()
        assert inside == built, "the image holds the binary scripts/image built"
    finally:
        run("buildah", "umount", container)


def test_the_binary_runs_in_the_image(container):
    version = run("buildah", "run", "--isolation", "chroot", container, "/laissez", "--version")
    assert version == run(required_env("LAISSEZ_BIN"), "--version")


def publish(queue: str, envelope: str, message_id: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange="",
            routing_key=queue,
            body=b'{"ticket": 7}',
            properties=pika.BasicProperties(
                message_id=message_id,
                delivery_mode=2,
                headers={"laissez-envelope": envelope, "laissez-tool": "crm.ticket.read"},
            ),
            mandatory=True,
        )
    finally:
        connection.close()


def delete_topology(queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        for suffix in ("", ".dlq", ".retry", ".rejected", ".revocations"):
            channel.queue_delete(queue + suffix)
        channel.exchange_delete(queue + ".dlx")
    finally:
        connection.close()


def test_the_image_consumes_from_the_real_broker(container, tmp_path: Path):
    # The chroot isolation shares the host's network: the broker on 127.0.0.1 is reachable
    # from inside the container, as it would be from a sidecar sharing a pod's network.
    host = required_env("LAISSEZ_BIN")
    queue = f"laissez-image-{uuid.uuid4().hex[:12]}"
    work = tmp_path / "work"
    work.mkdir()
    run(host, "keygen", "--out", "issuer.key", cwd=work)
    (work / "tools.toml").write_text('[tools]\n"crm.ticket.read" = "read"\n')
    run(host, "declare", "--amqp", AMQP_URL, "--queue", queue)
    try:
        envelope = run(host, "sign", "--key", "issuer.key", "--agent", "support-bot", "--aud",
                       queue, "--tool", "crm.ticket.read", "--max-uses", "1", cwd=work).strip()
        publish(queue, envelope, "m-image-1")
        # Only the public key and the catalogue go in, owned by the image's user, whose
        # directory also takes the ledger (the image's own root is not writable by it).
        (work / "issuer.key").unlink()
        user = dict(containerfile_instructions())["USER"]
        run("buildah", "copy", "--chown", user, container, str(work), "/work")
        result = subprocess.run(
            ["buildah", "run", "--isolation", "chroot", "--workingdir", "/work", container,
             "/laissez", "consume", "--amqp", AMQP_URL, "--queue", queue, "--trust",
             "issuer.key.pub", "--aud", queue, "--tools", "tools.toml", "--ledger",
             "uses.redb", "--revocations-stream", f"{queue}.revocations", "--exit-when-idle",
             "2s"],
            capture_output=True, text=True, check=False, timeout=120,
        )
    finally:
        delete_topology(queue)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    decisions = [line for line in lines if "outcome" not in line]
    assert len(decisions) == 1, result.stdout
    assert decisions[0]["message_id"] == "m-image-1"
    assert decisions[0]["allowed"] is True and decisions[0]["use"] == 1, decisions[0]
