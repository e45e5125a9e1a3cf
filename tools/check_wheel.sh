#!/usr/bin/env bash
# Checks the built wheel the way a user without Rust meets it (`make dist-check` runs it):
#   1. prints the wheel's platform tag and checks it against the manylinux policy (auditwheel),
#   2. installs it into a fresh venv, outside the source tree, with no Rust toolchain reachable
#      (cargo and rustc off PATH, a HOME without ~/.cargo, no CARGO_HOME or RUSTUP_HOME) and no
#      package index (`--no-index`: nothing can be built or downloaded),
#   3. from that venv: `kron --version`, `kron cron "0 3 * * *" -n 3`, a smoke test of the Python
#      API (tools/wheel_smoke.py) and the quick-start example.
# Usage: tools/check_wheel.sh [DIST_DIR]   (default dist/)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="${1:-$ROOT/dist}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$ROOT/.venv}"
say() { printf '\n== %s\n' "$*" >&2; }

shopt -s nullglob
wheels=("$DIST"/kron_scheduler-*.whl)
[ "${#wheels[@]}" -eq 1 ] || { echo "expected one kron_scheduler wheel in $DIST, found ${#wheels[@]}" >&2; exit 1; }
wheel="${wheels[0]}"
version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"

say "wheel: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"
case "$(basename "$wheel")" in
  kron_scheduler-"$version"-cp39-abi3-*manylinux*_x86_64.whl) ;;
  *) echo "the wheel's name does not say version $version, cp39-abi3 and a manylinux x86_64 tag" >&2; exit 1 ;;
esac
"$VENV/bin/pip" install -q "auditwheel>=6"
# `auditwheel show` names the most compatible platform the wheel's symbols allow; the check
# fails unless that is at least as broad as the tag it carries.
report="$("$VENV/bin/auditwheel" show "$wheel")"
printf '%s\n' "$report"
tag="$(printf '%s\n' "$report" | grep -o 'manylinux_[0-9]*_[0-9]*_x86_64' | head -n1)"
[ -n "$tag" ] || { echo "auditwheel found no manylinux platform for the wheel" >&2; exit 1; }
echo "platform tag: $tag"
printf '%s\n' "$report" | grep -q "is consistent with the following platform tag" \
  || { echo "the wheel's tag is not consistent with its symbols" >&2; exit 1; }

# A world without Rust: a PATH of system directories only, an empty HOME, no toolchain variables.
work="$(mktemp -d "${TMPDIR:-/tmp}/kron-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
py="$(command -v "$PYTHON")"
py_real="$("$py" -c 'import sys; print(sys.executable)')"
mkdir -p "$work/bin" "$work/home"
ln -s "$py_real" "$work/bin/python3"
bare=(env -i "PATH=$work/bin:/usr/bin:/bin" "HOME=$work/home" "LANG=C.UTF-8" "TMPDIR=$work")
for tool in cargo rustc rustup; do
  if "${bare[@]}" sh -c "command -v $tool" >/dev/null; then
    echo "$tool is still reachable in the check's environment" >&2; exit 1
  fi
done

say "install into a fresh venv (no index, no Rust)"
"${bare[@]}" python3 -m venv "$work/venv"
"${bare[@]}" "$work/venv/bin/pip" install -q --no-index --only-binary :all: "$wheel"
run=("${bare[@]}" "PATH=$work/venv/bin:$work/bin:/usr/bin:/bin")
cp "$ROOT/tools/wheel_smoke.py" "$ROOT/examples/quickstart.py" "$work/"
cd "$work"

say "kron --version"
out="$("${run[@]}" kron --version)"
echo "$out"
[ "$out" = "kron $version" ] || { echo "kron --version says '$out', expected 'kron $version'" >&2; exit 1; }

say 'kron cron "0 3 * * *" -n 3'
"${run[@]}" kron cron "0 3 * * *" -n 3

say "Python API smoke test"
"${run[@]}" python3 wheel_smoke.py "$version"

say "quick start"
"${run[@]}" python3 quickstart.py
echo "wheel check passed: $(basename "$wheel")"
