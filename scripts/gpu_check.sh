#!/usr/bin/env bash
# gpu_check.sh: check the whole project on one CUDA machine and print ONE summary at the end.
#
# Run from anywhere (the repository is found from this script's location), with the project
# installed (pip install -e .) in the active environment:
#     bash scripts/gpu_check.sh                 # everything
#     bash scripts/gpu_check.sh --skip-quick    # no `quick` workflow (the long step)
#     bash scripts/gpu_check.sh --only-bench    # the GPU check and the bench only
#
# Steps, each timed (wall seconds) with its exit code recorded; a failing step does not stop the
# ones after it, so the summary names every failure:
#   gpu        nvidia-smi, and torch's view of CUDA.  No CUDA for torch: error, exit 2, nothing else
#              runs (nothing in the project needs a GPU; this script is for checking one).
#   pytest     python -m pytest -q -x -p no:cacheprovider   (all tests, e2e included;
#              GPU_CHECK_PYTEST_ARGS replaces the arguments after `pytest`)
#   smoke      the smoke workflow with the gpu profile (smoke's config says device: cpu, so this
#              checks the profile and the workflow, not CUDA training)
#   quick      the quick workflow with the gpu profile (device: auto, so it trains on CUDA)
#   quick_cuda every quick checkpoint (each study's, read weights-only) records a CUDA device
#   resume     an interrupted GPU job resumes: smoke on device auto with longer training and a
#              resume state every epoch; one training job of each study is killed (SIGKILL) once
#              its resume state exists, then `--rerun-incomplete` must resume it ("resuming ...
#              from epoch N" in its log) and finish the workflow
#   bench      python -m infomax bench --device cuda (paper: ms per step of each study at paper
#              size), bench_compile: the same with --compile (CUDA graphs), and bench_table1: table1
#              stacked with --group-size 5, the README's GPU time for it
# Both workflows run in a scratch directory (snakemake --directory), so results land in
# $SCRATCH/results/<experiment>/ and the repository's results/ is never touched.
#
# Scratch directory: GPU_CHECK_DIR if set (it must be empty or not exist), else a fresh mktemp -d.
# Logs: $SCRATCH/logs/<step>.log (each step's full output); summary: $SCRATCH/gpu_check_summary.txt.
# Exit code: 0 only if every step that ran passed; 2 when torch sees no CUDA; 1 otherwise.
#
# How long: NOT YET RUN ON A GPU, so unknown.  The tests take minutes on a CPU; smoke a few
# minutes; quick is the long one (about 20 min on a 2-core CPU; on a GPU, expect less);
# the bench a few minutes.
#
# Helper modes (no GPU needed; used by the steps above and by tests/tools/test_gpu_check.py):
#     bash scripts/gpu_check.sh --summarize-claims results/smoke/claims.json
#     bash scripts/gpu_check.sh --summarize-devices results/smoke [--expect-cuda]
#     bash scripts/gpu_check.sh --resume-check DIR   (the resume step alone, on whatever device
#                                                    torch picks: also runs on a CPU)
set -u

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"

usage() {
    sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

# --- the python helper: claims verdicts, checkpoint devices, the pytest summary line ---------------
read -r -d '' HELPER <<'PY'
import glob, json, os, re, sys

def claims(path):
    """Each claim of a claims.json (its "claims" list): id, verdict, statement; then the counts."""
    try:
        with open(path) as f:
            d = json.load(f)
        cs = d["claims"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"  no verdicts: {path}: {type(e).__name__}: {e}")
        return 1
    exp = d.get("experiment", "?")
    counts = {}
    for c in cs:
        v = c.get("verdict", "?")
        counts[v] = counts.get(v, 0) + 1
        print(f"  {exp:6s} {c.get('id', '?'):4s} {v:13s} {c.get('statement', '')}")
    print(f"  {exp:6s} {len(cs)} claims: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    return 0 if cs else 1

def devices(results, expect_cuda=False):
    """The devices recorded in each study's training checkpoints (results/<study>/models/**.pt),
    read as the pipeline reads them: weights-only and digest-checked (infomax.files.load_torch),
    so a file that would run code while it is read is reported, never unpickled."""
    from infomax.files import load_torch
    from infomax.studies import STUDIES
    rc = 0
    for study in STUDIES:
        name = study.NAME
        files = sorted(glob.glob(os.path.join(results, name, "models", "**", "*.pt"), recursive=True))
        found, bad = {}, []
        for f in files:
            try:
                ck = load_torch(f, "gpu_check reads it only")
                dev = str(ck["device"]) if "device" in ck else "(no device key)"
            except Exception as e:  # a broken or refused file is a finding, not a crash
                dev = f"(unreadable: {type(e).__name__})"
            found[dev] = found.get(dev, 0) + 1
            if not dev.startswith("cuda"):
                bad.append(os.path.relpath(f, results))
        shown = ", ".join(f"{d} x{n}" for d, n in sorted(found.items())) or "none"
        print(f"  {study.TITLE}: {len(files)} checkpoint(s), devices: {shown}")
        if expect_cuda and (not files or bad):
            rc = 1
            print(f"  {study.TITLE}: expected every checkpoint on CUDA; "
                  + ("no checkpoints found" if not files else "not on CUDA: " + ", ".join(bad[:5])
                     + (" ..." if len(bad) > 5 else "")))
    return rc

def pytest_line(log):
    """The last line of pytest's output that reports the counts (`3 passed, 1 skipped in 2.0s`)."""
    try:
        with open(log, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        lines = []
    pat = re.compile(r"\b(passed|failed|error|errors|skipped|no tests ran|deselected)\b")
    hits = [l for l in lines if pat.search(l) and re.search(r"\bin [0-9.]+s\b", l)]
    print((hits or lines or ["(no output)"])[-1].strip("= "))
    return 0

mode, args = sys.argv[1], sys.argv[2:]
if mode == "claims":
    sys.exit(claims(args[0]))
if mode == "devices":
    sys.exit(devices(args[0], "--expect-cuda" in args[1:]))
if mode == "pytest-line":
    sys.exit(pytest_line(args[0]))
sys.exit(f"gpu_check helper: unknown mode {mode!r}")
PY

helper() { "$PY" -c "$HELPER" "$@"; }

# resume_check DIR: smoke in DIR with the device torch picks; kill one training job of each study
# once its resume state exists; --rerun-incomplete must resume both and finish.
resume_check() {
    local dir="$1" study pattern pid found i name
    KILLED=()
    mkdir -p "$dir" || return 1
    cat >"$dir/resume.yaml" <<'YAML'
experiments:
  smoke:
    device: auto
    vib_vim: {train: {epochs: 60, checkpoint_seconds: 1.0e-3}}
    dim_infobal: {train: {epochs: 30, checkpoint_seconds: 1.0e-3}}
YAML
    local run=(snakemake -s "$REPO/Snakefile" --directory "$dir" --configfile "$dir/resume.yaml"
               --config experiment=smoke --cores all --keep-going)
    echo "\$ ${run[*]} &   (then kill one training job of each study)"
    "${run[@]}" >"$dir/first_run.log" 2>&1 &
    pid=$!
    for study in vib_vim dim_infobal; do
        found=""
        for i in $(seq 1200); do                      # up to 10 minutes for a resume state
            found="$(find "$dir/results/smoke/$study" -name '*.resume' 2>/dev/null | head -n 1)"
            [ -n "$found" ] && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        [ -n "$found" ] || { echo "no resume state of $study appeared (see $dir/first_run.log)"; kill "$pid"; return 1; }
        # the job that wrote it (its --resume or --out names it), not its shell
        name="$(basename "$found" .resume)"
        pattern="^[^ ]*python[^ ]* -m infomax $study train .*${name}"
        echo "resume state $found: killing its training job (SIGKILL)"
        pkill -KILL -f "$pattern" || { echo "no '$pattern' process to kill"; kill "$pid"; return 1; }
        KILLED+=("$name")
    done
    wait "$pid"
    echo "first run exited $? (a killed job fails it; expected)"
    echo "\$ snakemake --unlock && ${run[*]} --rerun-incomplete"
    snakemake -s "$REPO/Snakefile" --directory "$dir" --configfile "$dir/resume.yaml" --config experiment=smoke \
        --unlock >/dev/null 2>&1
    "${run[@]}" --rerun-incomplete >"$dir/second_run.log" 2>&1 || { echo "the rerun failed: $dir/second_run.log"; return 1; }
    for name in "${KILLED[@]}"; do             # its rerun's log: "resuming <run> from epoch N"
        if ! grep -h "^resuming ${name%.pt}.* from epoch" "$dir/results/smoke/logs/"*/train/*.log; then
            echo "the killed job $name did not resume (logs: $dir/results/smoke/logs/*/train/)"
            return 1
        fi
    done
    echo "both killed jobs resumed; the workflow finished"
}

# --- options --------------------------------------------------------------------------------------
SKIP_TESTS=0 SKIP_SMOKE=0 SKIP_QUICK=0 SKIP_BENCH=0
while [ $# -gt 0 ]; do
    case "$1" in
        --skip-tests) SKIP_TESTS=1 ;;
        --skip-smoke) SKIP_SMOKE=1 ;;
        --skip-quick) SKIP_QUICK=1 ;;
        --skip-bench) SKIP_BENCH=1 ;;
        --only-bench) SKIP_TESTS=1 SKIP_SMOKE=1 SKIP_QUICK=1 ;;
        --summarize-claims)
            [ $# -ge 2 ] || { echo "--summarize-claims needs a claims.json path" >&2; exit 64; }
            helper claims "$2"; exit $? ;;
        --summarize-devices)
            [ $# -ge 2 ] || { echo "--summarize-devices needs a results/<experiment> directory" >&2; exit 64; }
            if [ "${3:-}" = "--expect-cuda" ]; then helper devices "$2" --expect-cuda; else helper devices "$2"; fi
            exit $? ;;
        --resume-check)
            [ $# -ge 2 ] || { echo "--resume-check needs a scratch directory" >&2; exit 64; }
            cd "$REPO" || exit 64; resume_check "$2"; exit $? ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done

# --- the scratch directory ------------------------------------------------------------------------
if [ -n "${GPU_CHECK_DIR:-}" ]; then
    SCRATCH="$GPU_CHECK_DIR"
    if [ -e "$SCRATCH" ] && [ -n "$(ls -A "$SCRATCH" 2>/dev/null)" ]; then
        # old results would make snakemake skip the jobs and the summary report stale verdicts
        echo "gpu_check.sh: GPU_CHECK_DIR=$SCRATCH is not empty; choose an empty or new directory" >&2
        exit 64
    fi
    mkdir -p "$SCRATCH" || exit 64
    SCRATCH="$(cd "$SCRATCH" && pwd)"
else
    SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")" || exit 64
fi
LOGS="$SCRATCH/logs"
SUMMARY="$SCRATCH/gpu_check_summary.txt"
mkdir -p "$LOGS" || exit 64
cd "$REPO" || exit 64

now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/,/.}"; else date +%s.%N; fi; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

NAMES=() SECS=() RCS=()
record() { NAMES+=("$1"); SECS+=("$2"); RCS+=("$3"); }

# run_step NAME CMD...: the command's output goes to $LOGS/NAME.log; its time and exit code are kept
run_step() {
    local name="$1"; shift
    local log="$LOGS/$name.log" t0 t1 rc
    echo "==> [$name] $*"
    echo "    log: $log"
    t0="$(now)"
    { echo "\$ $*"; "$@"; } >"$log" 2>&1
    rc=$?
    t1="$(now)"
    record "$name" "$(elapsed "$t0" "$t1")" "$rc"
    if [ "$rc" -eq 0 ]; then
        echo "    PASS ($(elapsed "$t0" "$t1") s)"
    else
        echo "    FAIL (exit $rc, $(elapsed "$t0" "$t1") s); last lines of the log:"
        tail -n 15 "$log" | sed 's/^/    | /'
    fi
    return "$rc"
}
skip_step() { record "$1" "-" "skip"; echo "==> [$1] skipped"; }

T_START="$(now)"
echo "gpu_check: repository $REPO"
echo "gpu_check: scratch    $SCRATCH"

# --- 1. the GPU -----------------------------------------------------------------------------------
gpu_info() {
    local rc=0
    echo "\$ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || rc=$?
    echo "\$ $PY -c 'import torch; ...'"
    "$PY" -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0))' || rc=$?
    return "$rc"
}
run_step gpu gpu_info
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >>"$LOGS/gpu.log" 2>&1; then
    echo
    echo "gpu_check: ERROR: torch sees no CUDA GPU (torch.cuda.is_available() is False)."
    echo "gpu_check: this script checks the project on a CUDA machine; nothing else was run."
    echo "gpu_check: (the project itself runs on the CPU: snakemake --cores all)"
    echo "gpu_check: details: $LOGS/gpu.log"
    exit 2
fi
GPU_LINE="$(grep -v -e '^\$' -e '^torch ' "$LOGS/gpu.log" | head -n 1)  |  $(grep '^torch ' "$LOGS/gpu.log" | head -n 1)"

# --- 2. the tests ---------------------------------------------------------------------------------
PYTEST_LINE="(skipped)"
if [ "$SKIP_TESTS" -eq 1 ]; then
    skip_step pytest
else
    if [ -n "${GPU_CHECK_PYTEST_ARGS+x}" ]; then
        read -r -a PYTEST_ARGS <<<"$GPU_CHECK_PYTEST_ARGS"
    else
        PYTEST_ARGS=(-q -x -p no:cacheprovider)
    fi
    run_step pytest "$PY" -m pytest "${PYTEST_ARGS[@]}"
    PYTEST_LINE="$(helper pytest-line "$LOGS/pytest.log")"
fi

# --- 3/4. the workflows in the scratch directory --------------------------------------------------
declare -A VERDICTS DEVICES
workflow() {  # workflow EXPERIMENT
    snakemake -s "$REPO/Snakefile" --directory "$SCRATCH" --profile "$REPO/workflow/profiles/gpu" \
        --config "experiment=$1" --cores all
}
for exp in smoke quick; do
    skip_var="SKIP_${exp^^}"
    if [ "${!skip_var}" -eq 1 ]; then
        skip_step "$exp"
        [ "$exp" = quick ] && skip_step quick_cuda
        continue
    fi
    run_step "$exp" workflow "$exp"
    VERDICTS[$exp]="$(helper claims "$SCRATCH/results/$exp/claims.json" 2>&1)"
    echo "${VERDICTS[$exp]}"
    if [ "$exp" = quick ]; then  # quick's device is auto: every checkpoint must say CUDA
        run_step quick_cuda helper devices "$SCRATCH/results/quick" --expect-cuda
        DEVICES[$exp]="$(grep '^  ' "$LOGS/quick_cuda.log")"
    else                         # smoke's device is cpu (config/config.yaml): reported, not checked
        DEVICES[$exp]="$(helper devices "$SCRATCH/results/$exp" 2>&1)"
    fi
    echo "${DEVICES[$exp]}"
done

# --- 5. an interrupted GPU job resumes ----------------------------------------------------------
if [ "$SKIP_SMOKE" -eq 1 ]; then
    skip_step resume
else
    run_step resume resume_check "$SCRATCH/resume"
fi

# --- 6. the bench ---------------------------------------------------------------------------------
BENCH_LINES="(skipped)"
if [ "$SKIP_BENCH" -eq 1 ]; then
    skip_step bench; skip_step bench_compile; skip_step bench_table1
else
    run_step bench "$PY" -m infomax bench --device cuda --config "$REPO/config/config.yaml" --out "$SCRATCH/bench.json"
    # the same with --compile: on CUDA, CUDA graphs (mode reduce-overhead), against the launch bound
    run_step bench_compile "$PY" -m infomax bench --device cuda --compile --config "$REPO/config/config.yaml" \
        --out "$SCRATCH/bench_compile.json"
    # table1 on the GPU: each objective's 5 seeds as one stacked model (README's GPU row)
    run_step bench_table1 "$PY" -m infomax bench --device cuda --config "$REPO/config/config.yaml" \
        --experiment table1 --group-size 5 --out "$SCRATCH/bench_table1.json"
    BENCH_LINES="$(cat "$LOGS/bench.log" "$LOGS/bench_compile.log" "$LOGS/bench_table1.log" \
        | grep -E '^(infomax bench:|note:|precision |ceiling |step  |(vib_vim|dim_infobal) .* (group of|jsd)|prediction:|all training steps:)' \
        | sed 's/^/  /')"
    [ -n "$BENCH_LINES" ] || BENCH_LINES="  (no bench report in $LOGS/bench.log)"
fi

# --- 7. the summary -------------------------------------------------------------------------------
TOTAL="$(elapsed "$T_START" "$(now)")"
FAILED=()
summary() {
    local i status
    echo "==================================== gpu_check summary ===================================="
    echo "repository: $REPO ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
    echo "gpu:        $GPU_LINE"
    echo
    printf '%-12s %10s %6s  %s\n' step seconds exit result
    for i in "${!NAMES[@]}"; do
        if [ "${RCS[$i]}" = skip ]; then status=SKIP
        elif [ "${RCS[$i]}" -eq 0 ]; then status=PASS
        else status=FAIL
        fi
        printf '%-12s %10s %6s  %s\n' "${NAMES[$i]}" "${SECS[$i]}" "${RCS[$i]}" "$status"
    done
    printf '%-12s %10s\n' total "$TOTAL"
    echo
    echo "pytest: $PYTEST_LINE"
    for exp in smoke quick; do
        echo
        echo "$exp: verdicts (results/$exp/claims.json)"
        echo "${VERDICTS[$exp]:-  (skipped)}"
        echo "$exp: checkpoint devices"
        echo "${DEVICES[$exp]:-  (skipped)}"
    done
    echo
    echo "bench ($SCRATCH/bench.json):"
    echo "$BENCH_LINES"
    echo
    echo "logs:    $LOGS/<step>.log"
    echo "results: $SCRATCH/results/<experiment>/"
    echo "summary: $SUMMARY"
    for i in "${!NAMES[@]}"; do
        [ "${RCS[$i]}" = skip ] || [ "${RCS[$i]}" -eq 0 ] || FAILED+=("${NAMES[$i]}")
    done
    if [ "${#FAILED[@]}" -eq 0 ]; then
        echo "RESULT: PASS (every step that ran passed)"
    else
        echo "RESULT: FAIL: ${FAILED[*]}"
    fi
}
echo
summary >"$SUMMARY"
cat "$SUMMARY"
grep -q '^RESULT: PASS' "$SUMMARY"
exit $?
