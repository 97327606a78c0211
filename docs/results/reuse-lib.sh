# The steps every issue-16 run script repeated (stops 50-53), once: source this file after setting D, the
# folder that holds the runs. Every step runs alone on two threads, logs its end (with its exit status) to
# $D/launch.log, which a later step can wait on, and returns that status (`train_p1 ... || exit`).
# Paths are this repository's checkout and its .venv.
: "${D:?set D, the runs folder, before sourcing reuse-lib.sh}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
M="$ROOT/.venv/bin"; PY="$M/python"; S="$ROOT/docs/results"
export OMP_NUM_THREADS=2

log() { echo "$1 at $(date -u)" >> "$D/launch.log"; }

# LABEL OUT CMD...: run CMD in the checkout with its output to OUT, log "LABEL (rc N)" and return N.
run_step() {
  local label=$1 out=$2 rc; shift 2
  (cd "$ROOT" && "$@" > "$out" 2>&1)
  rc=$?; log "$label (rc $rc)"; return $rc
}

# Wait until launch.log (of folder $2, default $D) has a line holding the text $1 (fixed, not a pattern).
# Wait lines are left out of the search: a wait on its own folder once matched the line it had just logged.
wait_for() {
  local folder=${2:-$D}
  [ -d "$folder" ] || { echo "wait_for: no folder $folder" >&2; return 2; }
  log "waiting for '$1' in $folder/launch.log"
  until grep -v '^waiting for ' "$folder/launch.log" 2>/dev/null | grep -qF -e "$1"; do sleep 5; done
}

# NAME SEED [options...]: P1's command (stop 50: reuse recipe, budget 0.17, coupling 3, the epoch-25 standard model
# as teacher: $TEACHER, by default M9's), 30 epochs, a resumable checkpoint after every epoch, plus any further options.
train_p1() {
  local name=$1 seed=$2; shift 2
  log "start $name (seed $seed${*:+, $*})"
  run_step "$name done" "$D/$name.out" "$M/mwt" train --recipe reuse --width 0.25 --epochs 30 --seed "$seed" \
    --save-every 1 --quiet --cost-block 16 --teacher "${TEACHER:-/work/runs/s52/std-e25.pt}" --flops-target 0.17 --gamma-warmup 5 \
    --beta 3 --budget-by-loss 0.5 --similarity 300 "$@" --log "$D/$name.jsonl" -o "$D/$name.pt"
}

# True when the epoch log $1 holds epoch $2.
has_epoch() { "$PY" -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; sys.exit(0 if any(x.get('epoch')==int(sys.argv[2]) for x in r) else 1)" "$1" "$2" 2>/dev/null; }

# True when the epoch log $1 holds epoch 30 (the run finished).
finished() { has_epoch "$1" 30; }

# SEED: seed SEED's standard model (30 epochs, a resumable save every 5) in $D/stdSEED.pt, resumed where an
# earlier session left it; nothing to do once its log holds epoch 30.
train_standard() {
  local s=$1 ckpt=$D/std$1.pt
  finished "$D/std$s.jsonl" && return 0
  if [ -f "$ckpt" ]; then
    run_step "std$s done" "$D/std$s.out" "$M/mwt" train --resume "$ckpt" --quiet --log "$D/std$s.jsonl"
  else
    run_step "std$s done" "$D/std$s.out" "$M/mwt" train --standard --width 0.25 --epochs 30 --seed "$s" --save-every 5 \
      --quiet --log "$D/std$s.jsonl" -o "$ckpt"
  fi
}

# CKPT NAME [STD]: modularize, mean FLOPs kept per threshold, then (given the standard model's checkpoint STD)
# the whole model paired against it and per-class accuracy beside each class's FLOPs. Without STD (a seed
# whose standard is not on disk) the gap is read off the log instead (goals.py LOG@PCT). No timing. Stops
# at the first step that fails.
score_accuracy() {
  local ckpt=$1 name=$2 std=${3:-}
  run_step "$name modularized" "$D/$name-modularize.txt" "$M/mwt" modularize -q "$ckpt" &&
    run_step "$name thresholds" "$D/$name-thresholds.txt" "$PY" "$S/reuse-stop44/thresholds.py" "$ckpt" 0.9 0.95 ||
    return
  [ -n "$std" ] || return 0
  run_step "$name paired" "$D/$name-paired.txt" "$PY" "$S/reuse-stop39/paired.py" "$std" "$ckpt" &&
    run_step "$name perclass" "$D/$name-perclass.txt" "$PY" "$S/reuse-stop46/perclass.py" "$std" "$ckpt"
}

# CKPT NAME CALLS [ROUNDS]: every pair and 20 triples exported data-free and gate-free and timed against the plain
# model in alternating turns of CALLS calls, in ROUNDS passes over all of them (default 1; batch 32, threshold
# 0.95, align 8, --parallelism batch). The pad limit is $PAD (default 0.05); another one tags the output "-padP".
# Output: $D/bench-NAME-cCALLS[-rROUNDS][-padP](.txt).
bench_reuse() {
  local ckpt=$1 name=$2 calls=$3 rounds=${4:-1} pad=${PAD:-0.05}
  local tag="$name-c$calls${4:+-r$rounds}"
  [ "$pad" = 0.05 ] || tag="$tag-pad${pad#0.}"
  run_step "bench $tag" "$D/bench-$tag.txt" "$PY" -m benchmarks.reuse "$ckpt" --names "$name" --threads 2 --align 8 \
    --threshold 0.95 --pad-limit "$pad" --parallelism batch --calls-per-turn "$calls" --rounds "$rounds" \
    --out "$D/bench-$tag"
}

# The trainings running now (the reuse recipe's, standard models' and resumed runs), one process id per line.
trainings() { pgrep -f "mwt train --recipe reuse"; pgrep -f "mwt train --standard"; pgrep -f "mwt train --resume"; }

# CMD...: run CMD with every training paused (SIGSTOP) and continue them after, so that a timing shares no core.
# Returns CMD's status. A script killed mid-CMD (SIGTERM, SIGINT, SIGHUP) still continues them, so that no
# training is left stopped for good.
paused() {
  local p rc; p=$(trainings); p=${p//$'\n'/ }
  log "pause $p"
  [ -z "$p" ] || kill -STOP $p 2>/dev/null
  # CMD runs in the background so that the trap fires at once (bash runs traps only between commands).
  "$@" & local c=$!
  trap "kill $c 2>/dev/null; kill -CONT $p 2>/dev/null; log 'resume on exit $p'; exit 143" TERM INT HUP
  wait $c; rc=$?
  trap - TERM INT HUP
  [ -z "$p" ] || kill -CONT $p 2>/dev/null
  log "resume $p"
  return $rc
}

# NAME [STD]: once NAME's training has logged its end, score it (score_accuracy against STD, then every pair and
# 20 triples timed with the trainings paused: bench_reuse 20 calls, 3 passes), one scorer at a time ($D/score.lock),
# so two runs that end together are scored in turn (stops 58-59).
score_when_done() {
  wait_for "$1 done" || return
  ( flock 9
    score_accuracy "$D/$1.pt" "$1" ${2:+"$2"} && log "$1 scored" && paused bench_reuse "$D/$1.pt" "$1" 20 3
  ) 9> "$D/score.lock"
}

# NAME SEED [options...]: a reuse run (train_p1's command plus the options) trained, or resumed from its save, to
# epoch 30; nothing to do once its log holds epoch 30.
train_run() {
  local name=$1 s=$2; shift 2
  finished "$D/$name.jsonl" && return 0
  if [ -f "$D/$name.pt" ]; then
    run_step "$name done" "$D/$name.out" "$M/mwt" train --resume "$D/$name.pt" --quiet --log "$D/$name.jsonl"
  else
    train_p1 "$name" "$s" "$@"
  fi
}

# Kw's options on top of train_p1's command (stop 64's candidate; stops 64-66).
KW=(--lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 --gate-leak 0.1 --gate-leak-from 8
    --gate-leak-warmup 4)

# NAME SEED: run NAME ($D/NAME.pt) scored against seed SEED's standard ($D/stdSEED.pt), timed with the reuse
# trainings paused (`paused`; a standard's training is not) (20 calls a turn, 2 passes), then its goals in $D/goals-NAME.txt. Finished steps are skipped.
score_and_time() {
  local name=$1 s=$2
  [ -f "$D/$name-perclass.txt" ] || score_accuracy "$D/$name.pt" "$name" "$D/std$s.pt" || return
  [ -f "$D/bench-$name-c20-r2/reuse.json" ] || paused bench_reuse "$D/$name.pt" "$name" 20 2 || return
  "$PY" "$S/reuse-stop55/goals.py" "$name=$D/bench-$name-c20-r2:$D/$name-paired.txt" > "$D/goals-$name.txt"
}

# NAME SEED [options...]: a reuse run (train_p1's command plus the options) trained or resumed to epoch 30, then
# score_and_time.
run_scored() {
  local name=$1 s=$2; shift 2
  train_run "$name" "$s" "$@" || return
  score_and_time "$name" "$s"
}
