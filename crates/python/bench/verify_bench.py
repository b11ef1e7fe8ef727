"""Python `Verifier.verify` per call, against the Rust figure of the same run and against
PyJWT's EdDSA verify for the same claims (docs/benchmarks.md, "Python").

    CARGO_TARGET_DIR=... python crates/python/bench/verify_bench.py [--no-rust]

Needs the `laissez` package built in release mode (`pip install ./crates/python`, or
`maturin develop --release`), PyJWT and cryptography. Runs `cargo bench -p laissez-bench
--bench verify` first (unless --no-rust) so that both figures come from one run on one machine.
The claims are the Rust bench's reference set (benches/src/lib.rs): same key seed, agent,
obo, audience, tools, classes, max_uses, TTL and issuer; the request is crm.ticket.update,
write, one minute after signing. Each figure is the median of 21 batches of about 40 ms,
as the Rust bench measures.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import laissez

AGENT = "spiffe://acme.example/agent/support-bot"
OBO = "tenant:acme/user:alice"
AUDIENCE = "support-tickets"
TOOLS = ["crm.ticket.*", "kb.search", "mail.draft"]
ISSUER = "orchestrator.acme.example"
TTL = 900
MAX_USES = 20
REQUEST_TOOL = "crm.ticket.update"
REPO = Path(__file__).resolve().parents[3]


def measure(f) -> float:
    """Nanoseconds per call: the median of 21 batches of about 40 ms (as benches/src/lib.rs)."""
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            f()
        if time.perf_counter() - t >= 0.010:
            break
        n *= 2
    n *= 4
    per_call = []
    for _ in range(21):
        t = time.perf_counter()
        for _ in range(n):
            f()
        per_call.append((time.perf_counter() - t) * 1e9 / n)
    return statistics.median(per_call)


def pattern_matches(pattern: str, tool: str) -> bool:
    # The contract's pattern rule (§1), for the JWT side's request check.
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return tool.startswith(pattern[:-1])
    return pattern == tool


def rust_figures() -> dict[str, float]:
    out = subprocess.run(
        ["cargo", "bench", "-p", "laissez-bench", "--bench", "verify", "--locked"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\| (.+?) \| ([\d.]+) µs \|", line)
        if m:
            rows[m.group(1)] = float(m.group(2)) * 1000
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-rust", action="store_true", help="skip the Rust bench")
    args = parser.parse_args()

    rust = {} if args.no_rust else rust_figures()

    seed = bytes([42] * 32)  # the Rust bench's fixed key: it protects nothing
    private = Ed25519PrivateKey.from_private_bytes(seed)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = laissez.SecretKey.from_pem(pem)
    now = int(time.time())
    envelope = laissez.sign(
        key, agent=AGENT, aud=AUDIENCE, tools=TOOLS, classes="read+write", max_uses=MAX_USES,
        ttl=TTL, nbf=now, iss=ISSUER, obo=OBO,
    )
    data = bytes(envelope)
    at = now + 60
    verifier = laissez.Verifier(key.public_key(), AUDIENCE)
    decision = verifier.verify(data, tool=REQUEST_TOOL, cls="write", now=at)
    assert decision.allowed, decision

    claims = {
        "iss": ISSUER, "sub": AGENT, "aud": AUDIENCE, "exp": now + TTL, "nbf": now, "iat": now,
        "jti": envelope.claims["cti"],
        "grant": {"v": 1, "tools": TOOLS, "classes": ["read", "write"], "max_uses": MAX_USES,
                  "obo": OBO},
    }
    token = jwt.encode(claims, private, algorithm="EdDSA")
    public = private.public_key()

    def jwt_verify():
        decoded = jwt.decode(token, public, algorithms=["EdDSA"], audience=AUDIENCE)
        grant = decoded["grant"]
        # The same request check laissez makes.
        assert any(pattern_matches(p, REQUEST_TOOL) for p in grant["tools"])
        assert "write" in grant["classes"]
        return decoded

    jwt_verify()

    def laissez_verify():
        return verifier.verify(data, tool=REQUEST_TOOL, cls="write", now=at)

    def laissez_check():
        return verifier.check(data, tool=REQUEST_TOOL, cls="write", now=at)

    ours = measure(laissez_verify)
    ours_check = measure(laissez_check)
    theirs = measure(jwt_verify)
    print(f"laissez Python verify benchmark (CPython {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores, laissez {len(data)} bytes, JWT {len(token)} bytes)")
    print()
    print("| case | time | ratio to PyJWT |")
    print("|---|---:|---:|")
    rows = []
    if "floor: ed25519-dalek verify_strict, 235 bytes" in rust or any(k.startswith("floor") for k in rust):
        floor_key = next(k for k in rust if k.startswith("floor"))
        rows.append((f"Rust {floor_key}", rust[floor_key]))
    cold = next((k for k in rust if k.startswith("laissez cold verify")), None)
    if cold:
        rows.append(("Rust laissez cold verify (same run)", rust[cold]))
    rows += [
        ("Python laissez Verifier.verify -> Decision", ours),
        ("Python laissez Verifier.check (allowed)", ours_check),
        ("Python PyJWT jwt.decode EdDSA + same tool check", theirs),
    ]
    for name, ns in rows:
        print(f"| {name} | {ns / 1000:.2f} µs | {ns / theirs:.3f}x |")
    if cold:
        print()
        print(f"Python over Rust: {ours / rust[cold]:.3f}x ({(ours - rust[cold]) / 1000:.2f} µs "
              "per call for the binding)")


if __name__ == "__main__":
    main()
