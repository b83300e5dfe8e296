#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that faces untrusted input (issue 18; docs/operations.md,
# "Limits on untrusted input"). Builds the libFuzzer targets of the Fuzz/ package once, with
# `--sanitize=fuzzer --sanitize=address`, in its own scratch path (.build-fuzz), then runs each
# target for N seconds on its seed corpus (Fuzz/Corpus/<target>) and dictionary (Fuzz/Dictionaries).
#
#   scripts/fuzz.sh [--seconds N] [--update-corpus] [target…]
#
# --seconds N        time per target (default 20)
# --update-corpus    write new inputs into Fuzz/Corpus/<target> (default: .build-fuzz/corpus/<target>)
# target…            any of the names below (default: all)
#
# Prints one line per target with executions, executions per second, coverage (cov) and features
# (ft) from libFuzzer's final stats. Exits non-zero if any target crashes, leaks memory past the
# RSS limit or times out; the input that did it is in .build-fuzz/artifacts/<target>/ (minimize it
# with `<binary> -minimize_crash=1 -runs=10000 <input>`, then add it as a regression test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ALL_TARGETS=(FuzzJSON FuzzControlLine FuzzKubeconfig FuzzKubeWatch FuzzRethinkWire FuzzLegacyRecord FuzzGuildNetConfig)
seconds=20
update_corpus=0
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --update-corpus) update_corpus=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        Fuzz*) targets+=("$1"); shift ;;
        *) echo "fuzz.sh: unknown argument $1 (targets: ${ALL_TARGETS[*]})" >&2; exit 2 ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")

dictionary() {
    case "$1" in
        FuzzJSON) echo json.dict ;;
        FuzzControlLine) echo control.dict ;;
        FuzzKubeconfig) echo kubeconfig.dict ;;
        FuzzKubeWatch) echo kubewatch.dict ;;
        FuzzRethinkWire) echo rethink.dict ;;
        FuzzLegacyRecord) echo legacy.dict ;;
        FuzzGuildNetConfig) echo guildnet-config.dict ;;
        *) echo "fuzz.sh: unknown target $1" >&2; exit 2 ;;
    esac
}

scratch="$PWD/.build-fuzz"
# swiftc keeps only its last -sanitize= flag, so SwiftPM's separate --sanitize=fuzzer and --sanitize=address
# would leave Swift code without coverage instrumentation: the -Xswiftc flag (passed last) names both.
build_flags=(--package-path Fuzz --scratch-path "$scratch" --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address)
echo "== fuzz: build (${build_flags[*]})"
build_start=$SECONDS
mkdir -p "$scratch"
build_status=0
# One product at a time: a plain `swift build` would also link the root package's executables,
# whose own `main` collides with libFuzzer's.
: >"$scratch/build.log"
for target in "${targets[@]}"; do
    swift build "${build_flags[@]}" --product "$target" >>"$scratch/build.log" 2>&1 || build_status=$?
done
# ld.gold's "Cannot export local symbol '__asan_…'" warnings are harmless.
grep -vE "Cannot export local symbol|^\[[0-9]+/[0-9]+\]" "$scratch/build.log" | tail -n 20 || true
[[ $build_status -eq 0 ]] || { echo "fuzz.sh: build failed (log $scratch/build.log)" >&2; exit 1; }
bin="$(swift build "${build_flags[@]}" --show-bin-path 2>/dev/null)"
echo "== fuzz: built in $((SECONDS - build_start)) s; ${seconds} s per target"

# Library leaks are known and not ours (/work/shared/docs/swift-deps.md); crashes and ASan errors are.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
failed=0
for target in "${targets[@]}"; do
    dict="Fuzz/Dictionaries/$(dictionary "$target")"
    seeds="Fuzz/Corpus/$target"
    artifacts="$scratch/artifacts/$target/"
    log="$scratch/logs/$target.log"
    mkdir -p "$artifacts" "$(dirname "$log")" "$seeds"
    if [[ $update_corpus -eq 1 ]]; then
        corpus=("$seeds")
    else
        corpus=("$scratch/corpus/$target" "$seeds")
        mkdir -p "$scratch/corpus/$target"
    fi
    status=0
    "$bin/$target" "${corpus[@]}" -dict="$dict" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9A-Za-z]+).*/\1/p' <<<"$last")
    if [[ $status -eq 0 ]]; then
        result=ok
    else
        result="FAILED (exit $status; log $log; artifacts $artifacts)"
        failed=1
        grep -E "^==[0-9]+==ERROR|^SUMMARY|Fatal error|Precondition failed|deadly signal|ALARM|out-of-memory" "$log" | head -n 5 || true
    fi
    printf '%-18s execs=%-9s execs/s=%-7s cov=%-6s ft=%-7s corpus=%-12s %s\n' \
        "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done
exit $failed
