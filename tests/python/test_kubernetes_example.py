"""deploy/kubernetes/worker-sidecar.yaml, the sidecar example, is one that works: the real
`laissez consume` accepts its arguments and the files it mounts, everything it refers to is in
the manifest, the image is the one scripts/image builds, the probes reach the metrics
listener, and both containers run locked down."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import laissez_bin

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "deploy" / "kubernetes" / "worker-sidecar.yaml"
# A port nothing listens on: the run stops at connecting to the broker, after every argument
# and file was read, the metrics listener bound and the (real) Redis ledger reached.
UNREACHABLE_AMQP = "amqp://guest:guest@127.0.0.1:1/%2f"
REDIS_URL = os.environ.get("LAISSEZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/")


@pytest.fixture(scope="module")
def documents() -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    by_kind: dict[str, dict] = {}
    for doc in docs:
        assert doc["kind"] not in by_kind, f"one {doc['kind']} in the example"
        by_kind[doc["kind"]] = doc
    assert set(by_kind) == {"ConfigMap", "Secret", "Deployment"}
    return by_kind


def pod(documents: dict[str, dict]) -> dict:
    return documents["Deployment"]["spec"]["template"]["spec"]


def container(documents: dict[str, dict], name: str) -> dict:
    found = [c for c in pod(documents)["containers"] if c["name"] == name]
    assert len(found) == 1, f"one container named {name}"
    return found[0]


def flag(args: list[str], name: str) -> str:
    assert args.count(name) == 1, f"{name} once in the sidecar's args"
    return args[args.index(name) + 1]


def test_the_sidecar_runs_the_image_scripts_image_builds(documents):
    name = subprocess.run([str(REPO / "scripts" / "image"), "--print-name"], check=True,
                          capture_output=True, text=True).stdout.strip()
    sidecar = container(documents, "laissez")
    assert sidecar["image"] == name
    assert "command" not in sidecar, "the image's entrypoint is /laissez"
    assert sidecar["args"][0] == "consume"
    assert container(documents, "worker")["image"] == "example/go-worker"


def test_everything_referred_to_is_in_the_manifest(documents):
    spec = pod(documents)
    config_map, secret = documents["ConfigMap"], documents["Secret"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for c in spec["containers"]:
        for mount in c.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{c['name']} mounts {mount['name']}"
        for env in c.get("env", []):
            ref = env["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"], env
            assert ref["key"] in secret["stringData"], env
    for volume in volumes.values():
        if "configMap" in volume:
            assert volume["configMap"]["name"] == config_map["metadata"]["name"]
            for item in volume["configMap"].get("items", []):
                assert item["key"] in config_map["data"], item
        elif "secret" in volume:
            assert volume["secret"]["secretName"] == secret["metadata"]["name"]
        else:
            raise AssertionError(f"a volume of an unexpected kind: {volume}")
    labels = documents["Deployment"]["spec"]["template"]["metadata"]["labels"]
    selector = documents["Deployment"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()


def mounted_files(documents, sidecar) -> dict[str, str]:
    """Each file the sidecar sees, by path in the container, with its content."""
    volumes = {v["name"]: v for v in pod(documents)["volumes"]}
    config_map = documents["ConfigMap"]["data"]
    files = {}
    for mount in sidecar["volumeMounts"]:
        volume = volumes[mount["name"]]["configMap"]
        for item in volume["items"]:
            files[f"{mount['mountPath']}/{item['path']}"] = config_map[item["key"]]
    return files


def test_the_real_parser_accepts_the_sidecar_and_its_files(documents, tmp_path: Path):
    sidecar = container(documents, "laissez")
    args = list(sidecar["args"])
    # The files the pod mounts, at the same places under a temporary root.
    for path, content in mounted_files(documents, sidecar).items():
        local = tmp_path / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(content)
    args = [str(tmp_path / a.lstrip("/")) if (tmp_path / a.lstrip("/")).is_file() else a
            for a in args]
    assert flag(args, "--tools").startswith(str(tmp_path)), "the catalogue is a mounted file"
    assert flag(args, "--trust").startswith(str(tmp_path)), "the key is a mounted file"
    # The listener port is the probes' (checked below); here any free port on loopback.
    args[args.index("--metrics") + 1] = "127.0.0.1:0"
    env_names = {e["name"] for e in sidecar["env"]}
    assert env_names == {"LAISSEZ_AMQP_URL", "LAISSEZ_REDIS_URL"}
    result = subprocess.run(
        [laissez_bin(), *args], capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": os.environ.get("PATH", ""), "LAISSEZ_AMQP_URL": UNREACHABLE_AMQP,
             "LAISSEZ_REDIS_URL": REDIS_URL},
    )
    # 2 would be a usage error (clap's, or a catalogue or flag that does not hold); 3 with the
    # broker named is the one thing missing: everything before connecting was accepted.
    assert result.returncode == 3, result.stderr
    assert "laissez: metrics on http://127.0.0.1:" in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("laissez: the AMQP broker") and "127.0.0.1:1" in last, result.stderr

def test_the_probes_ask_the_metrics_listener(documents):
    sidecar = container(documents, "laissez")
    address = flag(sidecar["args"], "--metrics")
    host, _, port = address.rpartition(":")
    ipaddress.ip_address(host)  # --metrics takes IP:PORT, not a name
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert ports["metrics"] == int(port)
    readiness = sidecar["readinessProbe"]["httpGet"]
    assert readiness["path"] == "/healthz" and readiness["port"] in ("metrics", int(port))
    liveness = sidecar["livenessProbe"]["httpGet"]
    assert liveness["path"] == "/metrics" and liveness["port"] in ("metrics", int(port))
    # The handler is the worker's port, on the pod's own loopback.
    handler = flag(sidecar["args"], "--http")
    worker_ports = [p["containerPort"] for p in container(documents, "worker")["ports"]]
    assert handler == f"http://127.0.0.1:{worker_ports[0]}/"


def test_the_containers_are_locked_down(documents):
    spec = pod(documents)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    for c in spec["containers"]:
        context = c["securityContext"]
        assert context["runAsNonRoot"] is True, c["name"]
        assert context["readOnlyRootFilesystem"] is True, c["name"]
        assert context["allowPrivilegeEscalation"] is False, c["name"]
        assert context["capabilities"]["drop"] == ["ALL"], c["name"]
        assert "add" not in context["capabilities"], c["name"]
        assert context.get("privileged", False) is False, c["name"]
        limits = c["resources"]["limits"]
        assert limits.get("cpu") and limits.get("memory"), c["name"]
    # The image's user (deploy/container/Containerfile) is the pod's.
    containerfile = (REPO / "deploy" / "container" / "Containerfile").read_text()
    user_line = next(l for l in containerfile.splitlines() if l.startswith("USER "))
    uid, _, gid = user_line.split()[1].partition(":")
    assert spec["securityContext"]["runAsUser"] == int(uid)
    assert spec["securityContext"]["runAsGroup"] == int(gid)
