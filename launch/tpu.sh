#!/usr/bin/env bash
# Cloud TPU VM launcher for harjax: create a VM (one host or a pod slice), install harjax on every
# worker, run launch/<script>.py on all workers at once, copy results back, delete the VM.
# Run it from your own machine with an authenticated gcloud; see docs/cloud.md for the walk-through.
set -euo pipefail

TPU_NAME="${TPU_NAME:-harjax}"
ZONE="${ZONE:-us-central1-a}"
ACCELERATOR="${ACCELERATOR:-v5litepod-8}"
PROJECT="${PROJECT:-}"
# Default: the origin of the checkout this script sits in (the workers clone it over https/ssh).
REPO="${REPO:-$(git -C "$(dirname "$0")" remote get-url origin 2>/dev/null || true)}"
REF="${REF:-main}"
BUCKET="${BUCKET:-}"
MOUNT="${MOUNT:-/mnt/harjax}"
DRY_RUN="${DRY_RUN:-0}"
DETACH="${DETACH:-0}"
SPOT="${SPOT:-0}"

# Paths on every worker (relative to the remote home directory).
REMOTE_CHECKOUT="harjax"
REMOTE_VENV="harjax-venv"
REMOTE_LOGS="harjax-logs"

usage() {
  cat <<EOF
Usage: launch/tpu.sh COMMAND [ARGS...]

Commands
  create                  create the TPU VM \$TPU_NAME (\$ACCELERATOR: v5litepod-8 = one host,
                          v5litepod-32 / v4-32 = a pod slice of several hosts)
  setup                   on every worker: clone \$REPO at \$REF to ~/$REMOTE_CHECKOUT, make a
                          Python 3.11 venv ~/$REMOTE_VENV with 'jax[tpu]' and harjax; with \$BUCKET
                          set, also mount gs://\$BUCKET at \$MOUNT (gcsfuse) as the shared workdir
  run SCRIPT [FLAGS...]   run launch/SCRIPT.py (train, fewshot, ...) on ALL workers at once with
                          the same FLAGS; each worker joins the run (jax.distributed) and reads its
                          own shard of the data; only process 0 writes reports
  fetch REMOTE [LOCAL]    copy REMOTE (a directory on worker 0, relative to its home, or gs://...)
                          to LOCAL (default: .)
  ssh [WORKER]            open a shell on a worker (default 0)
  status                  describe the TPU VM
  delete                  delete the TPU VM (stops billing)

Environment (current value)
  TPU_NAME=$TPU_NAME  ZONE=$ZONE  ACCELERATOR=$ACCELERATOR  PROJECT=${PROJECT:-<gcloud default>}
  RUNTIME_VERSION=$(runtime_version)  (derived from ACCELERATOR unless set)
  REPO=${REPO:-<unset: no git origin here>}  REF=$REF
  BUCKET=${BUCKET:-<none>}  MOUNT=$MOUNT  SPOT=$SPOT (1: spot VM)
  DETACH=$DETACH (1: 'run' keeps going after you disconnect; logs in ~/$REMOTE_LOGS)
  DRY_RUN=$DRY_RUN (1: print the gcloud commands instead of running them)

Examples
  ACCELERATOR=v5litepod-8 launch/tpu.sh create && launch/tpu.sh setup
  launch/tpu.sh run train --config.backbone.dtype bfloat16 --workdir runs/train
  launch/tpu.sh fetch $REMOTE_CHECKOUT/runs/train ./runs/
  ZONE=us-central2-b ACCELERATOR=v4-32 BUCKET=my-bucket launch/tpu.sh create
  launch/tpu.sh run fewshot --workdir $MOUNT/runs/fewshot && launch/tpu.sh fetch gs://my-bucket/runs/fewshot
  launch/tpu.sh delete
EOF
}

die() {
  echo "launch/tpu.sh: $*" >&2
  exit 2
}

# The TPU software version for the accelerator family (cloud.google.com/tpu/docs/runtimes).
runtime_version() {
  if [[ -n "${RUNTIME_VERSION:-}" ]]; then
    echo "$RUNTIME_VERSION"
    return
  fi
  case "$ACCELERATOR" in
    v6e-*) echo "v2-alpha-tpuv6e" ;;
    v5p-*) echo "v2-alpha-tpuv5" ;;
    v5litepod-* | v5e-*) echo "v2-alpha-tpuv5-lite" ;;
    v2-* | v3-* | v4-*) echo "tpu-ubuntu2204-base" ;;
    *) echo "unknown-accelerator-set-RUNTIME_VERSION" ;;
  esac
}

# One argument as a shell word: bare when safe, else in single quotes (readable, copy-pasteable).
shell_word() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$1"
  else
    local escaped="'\\''"
    printf "'%s'" "${1//\'/$escaped}"
  fi
}

# Runs gcloud, or prints it (one line, shell-quoted) when DRY_RUN=1.
gcloud_() {
  if [[ "$DRY_RUN" == "1" ]]; then
    local word line="gcloud"
    for word in "$@"; do
      line+=" $(shell_word "$word")"
    done
    printf '%s\n' "$line"
  else
    gcloud "$@"
  fi
}

location_flags() {
  LOCATION=(--zone="$ZONE")
  if [[ -n "$PROJECT" ]]; then
    LOCATION+=(--project="$PROJECT")
  fi
}

on_workers() { # on_workers WORKER COMMAND: one ssh per worker, all in parallel for 'all'
  location_flags
  gcloud_ compute tpus tpu-vm ssh "$TPU_NAME" "${LOCATION[@]}" --worker="$1" --command="$2"
}

cmd_create() {
  local version
  version="$(runtime_version)"
  [[ "$version" == unknown-* ]] && die "no known runtime version for ACCELERATOR=$ACCELERATOR; set RUNTIME_VERSION"
  location_flags
  local spot=()
  [[ "$SPOT" == "1" ]] && spot=(--spot)
  # ${a[@]+"${a[@]}"}: an empty array under `set -u` on macOS's bash 3.2.
  gcloud_ compute tpus tpu-vm create "$TPU_NAME" "${LOCATION[@]}" \
    --accelerator-type="$ACCELERATOR" --version="$version" ${spot[@]+"${spot[@]}"}
}

cmd_setup() {
  # One line: every step must succeed on every worker; `set -e` stops at the first failure.
  [[ -n "$REPO" ]] || die "setup: set REPO to a git URL the workers can clone (no origin found here)"
  local repo ref
  repo="$(printf '%q' "$REPO")"
  ref="$(printf '%q' "$REF")"
  local script="set -e"
  script+="; if [ ! -d ~/$REMOTE_CHECKOUT/.git ]; then git clone --quiet $repo ~/$REMOTE_CHECKOUT; fi"
  script+="; git -C ~/$REMOTE_CHECKOUT fetch --quiet origin $ref"
  script+="; git -C ~/$REMOTE_CHECKOUT checkout --quiet --detach FETCH_HEAD"
  # jax >= 0.7 needs Python >= 3.11; the TPU images ship 3.10, so uv fetches a managed 3.11.
  script+="; python3 -m pip install --quiet --user --upgrade uv"
  script+="; ~/.local/bin/uv venv --quiet --allow-existing --python 3.11 ~/$REMOTE_VENV"
  script+="; ~/.local/bin/uv pip install --quiet --python ~/$REMOTE_VENV/bin/python 'jax[tpu]' -e ~/$REMOTE_CHECKOUT"
  script+="; ~/$REMOTE_VENV/bin/python -c 'import jax, harjax; print(jax.process_index(), jax.local_device_count(), jax.device_count())'"
  if [[ -n "$BUCKET" ]]; then
    local mount bucket
    mount="$(printf '%q' "$MOUNT")"
    bucket="$(printf '%q' "${BUCKET#gs://}")"
    script+="; if ! command -v gcsfuse >/dev/null; then"
    script+=" curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null"
    script+=" && echo \"deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-\$(lsb_release -cs) main\" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null"
    script+=" && sudo apt-get update -qq && sudo apt-get install -y -qq gcsfuse; fi"
    script+="; sudo mkdir -p $mount && sudo chown \$(id -u):\$(id -g) $mount"
    # Orbax finalises a checkpoint by renaming its temporary directory: allow directory renames.
    script+="; mountpoint -q $mount || gcsfuse --implicit-dirs --rename-dir-limit=200000 $bucket $mount"
  fi
  on_workers all "$script"
}

cmd_run() {
  [[ $# -ge 1 ]] || die "run: which script? e.g. 'run train --workdir runs/train' (see --help)"
  local script="$1"
  shift
  [[ "$script" =~ ^[a-z_]+$ ]] || die "run: SCRIPT must name launch/SCRIPT.py (e.g. train, fewshot), got '$script'"
  local flags=""
  if [[ $# -gt 0 ]]; then
    flags="$(printf ' %q' "$@")"
  fi
  local python="~/$REMOTE_VENV/bin/python launch/$script.py$flags"
  local log="~/$REMOTE_LOGS/$script-\$(date +%Y%m%d-%H%M%S).log"
  # HARJAX_DISTRIBUTED=1: every worker calls jax.distributed.initialize() (harjax.distributed).
  local command="set -o pipefail; mkdir -p ~/$REMOTE_LOGS && cd ~/$REMOTE_CHECKOUT || exit 1"
  command+="; export HARJAX_DISTRIBUTED=1"
  if [[ "$DETACH" == "1" ]]; then
    command+="; nohup $python > $log 2>&1 < /dev/null & echo \"started on \$(hostname), log in ~/$REMOTE_LOGS\""
  else
    command+="; $python 2>&1 | tee $log"
  fi
  on_workers all "$command"
}

cmd_fetch() {
  [[ $# -ge 1 ]] || die "fetch: what? e.g. 'fetch $REMOTE_CHECKOUT/runs/train ./runs/' (see --help)"
  local remote="$1" local_dir="${2:-.}"
  if [[ "$remote" == gs://* ]]; then
    gcloud_ storage cp --recursive "$remote" "$local_dir"
  else
    location_flags
    gcloud_ compute tpus tpu-vm scp --recurse --worker=0 "${LOCATION[@]}" "$TPU_NAME:$remote" "$local_dir"
  fi
}

main() {
  local command="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$command" in
    -h | --help | help) usage ;;
    create) cmd_create "$@" ;;
    setup) cmd_setup "$@" ;;
    run) cmd_run "$@" ;;
    fetch) cmd_fetch "$@" ;;
    ssh)
      location_flags
      gcloud_ compute tpus tpu-vm ssh "$TPU_NAME" "${LOCATION[@]}" --worker="${1:-0}"
      ;;
    status)
      location_flags
      gcloud_ compute tpus tpu-vm describe "$TPU_NAME" "${LOCATION[@]}"
      ;;
    delete)
      location_flags
      gcloud_ compute tpus tpu-vm delete "$TPU_NAME" "${LOCATION[@]}" --quiet
      ;;
    "") usage >&2 && exit 2 ;;
    *) usage >&2 && die "unknown command '$command'" ;;
  esac
}

main "$@"
