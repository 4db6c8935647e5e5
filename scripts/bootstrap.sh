#!/usr/bin/env bash
# Set up napari-dippas on a fresh machine and run one job.
#
#   bash scripts/bootstrap.sh demo   # environment in .venv, then the demo anonymization
#   bash scripts/bootstrap.sh test   # headless-Qt system packages, .venv, then the test suite
#
# Extra arguments after the mode go to `dippas demo` or to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-demo}"
shift || true
PYTHON="${PYTHON:-python3}"

# Debian packages napari needs to draw under Xvfb with Mesa (test mode only).
QT_PACKAGES="xvfb xauth libgl1 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-cursor0 \
libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 \
libxcb-xfixes0 libxcb-xinerama0 libdbus-1-3 libfontconfig1"

install_system_packages() {
    local missing=()
    for pkg in $QT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "Installing system packages for headless Qt: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

make_venv() {
    if [ ! -x .venv/bin/python ]; then
        echo "Creating .venv"
        "$PYTHON" -m venv .venv
    fi
    # shellcheck disable=SC1091
    . .venv/bin/activate
    python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    # The CPU build of torch first: the project's torch range is then already satisfied,
    # so no multi-GB CUDA build is pulled in.
    python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
    python -m pip install -q --disable-pip-version-check -e ".[gui,test,dask]" 2>&1 | grep -v "^WARNING: Location" || true
    python -c "import dippas, napari_dippas, torch" || { echo "installation failed" >&2; exit 1; }
}

case "$mode" in
    demo)
        make_venv
        dippas demo "$@"
        ;;
    test)
        install_system_packages
        make_venv
        python -m pytest -q "$@"
        ;;
    *)
        echo "usage: bash scripts/bootstrap.sh demo|test [args...]" >&2
        exit 2
        ;;
esac
