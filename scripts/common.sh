# Shared by the set-up scripts: make sure the tools exist on a fresh Debian machine.
# Sourced, not run.

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "error: '$*' needs root (or sudo)" >&2; return 1; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@"
}

# Rust 1.90 or newer, and a C toolchain for the few build scripts that need one.
ensure_rust() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    if ! command -v cc >/dev/null; then
        apt_install build-essential pkg-config ca-certificates
    fi
    if ! command -v cargo >/dev/null; then
        # Debian 13 packages rustup; it fetches the stable toolchain.
        apt_install rustup && rustup default stable
    fi
    if ! command -v cargo >/dev/null; then
        echo "error: no cargo: install Rust 1.90 or newer with rustup (https://rustup.rs)" >&2
        exit 1
    fi
}

# Python 3 with venv (the interop suite's own environment): Debian ships venv's ensurepip
# in a separate package, without which `python3 -m venv` fails.
ensure_python_venv() {
    if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        apt_install python3 python3-venv
    fi
}

# Chromium and its WebDriver, for the interop suite's test of `laissez approve --serve` in a
# real headless browser (Debian's packages: /usr/bin/chromium, /usr/bin/chromedriver).
ensure_chromium() {
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        apt_install chromium chromium-driver
    fi
}

# Go, for the test that builds examples/go-worker and runs it behind `laissez consume --http`
# (Debian's golang-go: Go 1.19 on Debian 12, enough for the example's go.mod).
ensure_go() {
    if ! command -v go >/dev/null; then
        apt_install golang-go
    fi
}

# musl's C toolchain (Debian's musl-tools: musl-gcc) and Rust's musl target, for the static
# `laissez` binary of the container image (scripts/image): ring compiles C and assembly, and
# the cc crate finds musl-gcc for x86_64-unknown-linux-musl.
ensure_musl() {
    if ! command -v musl-gcc >/dev/null; then
        apt_install musl-tools
    fi
    if command -v rustup >/dev/null; then
        rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 ||
            { echo "error: rustup cannot add the x86_64-unknown-linux-musl target" >&2; return 1; }
    fi
}

# buildah, which builds the container image from deploy/container/Containerfile without a
# daemon (scripts/image); its tests run the image with chroot isolation.
ensure_buildah() {
    if ! command -v buildah >/dev/null; then
        apt_install buildah
    fi
}
