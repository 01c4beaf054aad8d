# Shared prologue of the benchmarks (sourced, not run): checks the tools, builds the release
# binary. Expects ROOT; sets BIN and the functions die and step.
die() { echo "bench: $*" >&2; exit 1; }
step() { echo "bench: $*" >&2; }
for tool in cargo python3 curl; do
    command -v "$tool" >/dev/null || die "\`$tool\` is not installed; it is needed to run this benchmark"
done
step "building linkrun (cargo build --release)"
(cd "$ROOT" && cargo build --release --bin linkrun >&2) || die "cargo build --release failed"
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/release/linkrun"
