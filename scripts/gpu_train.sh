#!/usr/bin/env bash
# Train the models of docs/training.md on one GPU, all runs in parallel, each within a time
# budget; results land in $OUT (at most 8 files there: weights as <=15 MB shards + one tarball).
#
#   bash scripts/gpu_train.sh DATA_DIR BUDGET_SECONDS [P]
#
# DATA_DIR holds lfw-devtrain.npz and celeba.npz (scripts/train_build_cache.py). Needs only
# python3 with torch, numpy and OpenCV. Runs (identity-disjoint 10% validation split, seed 0):
#   dlib_a   dlib ResNet fine-tuned on LFW DevTrain + celeba-subset, stem + stages 1-2 frozen, lr 3e-5 / 1e-5
#   dlib_b   the same with lr 1e-4 / 3e-5
#   dlib_cel dlib ResNet fine-tuned on celeba-subset only (never sees an LFW person: honest View 2)
#   compact  compact_cnn from scratch, batch-all triplet loss
#   compact_siamese  compact_cnn from scratch, Siamese |f_i - f_j| head with pair BCE
set -u
PY=${PYTHON:-python3}
DATA=${1:-artifacts/training}
B=${2:-200}
P=${3:-64}
OUT=${OUT:-/tmp/gpu_out}
RUNS=${RUNS:-/tmp/runs}
mkdir -p "$RUNS" "$OUT"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=3 OMP_WAIT_POLICY=PASSIVE
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
$PY -c "import torch, cv2, numpy; print('torch', torch.__version__, 'cv2', cv2.__version__, 'cuda', torch.cuda.is_available())"
DEV=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
BOTH="--data $DATA/lfw-devtrain.npz --data $DATA/celeba.npz"
COMMON="--quiet --time-budget $B --device $DEV --p $P --k 4 --seed 0 --split-seed 0 --val-fraction 0.1"
DLIB="--arch dlib_resnet --init resources/models/dlib_resnet_v1.pt --freeze-stages 2 --weight-decay 0 --warmup-epochs 2 --epochs 60 --patience 10 --monitor tar_at_far_1e-3 --miner batch-hard --loss triplet --margin 0.2"
COMPACT="--arch compact_cnn --lr 2e-3 --weight-decay 5e-4 --epochs 200 --patience 25 --monitor accuracy"
fit() {
  local name=$1; shift
  echo "fit $name: $*" > "$RUNS/$name.cmd"
  timeout $((B + 120)) $PY -m faceapp.cli.train fit --out "$RUNS/$name" "$@" > "$RUNS/$name.log" 2>&1
  echo "$name exit $?"
}
t0=$(date +%s)
fit dlib_a   $BOTH $COMMON $DLIB --lr 3e-5 --backbone-lr-mult 0.33 &
fit dlib_b   $BOTH $COMMON $DLIB --lr 1e-4 --backbone-lr-mult 0.3 &
fit dlib_cel --data $DATA/celeba.npz $COMMON $DLIB --lr 3e-5 --backbone-lr-mult 0.33 &
fit compact  $BOTH $COMMON $COMPACT --miner batch-all --loss triplet --margin 0.2 &
fit compact_siamese $BOTH $COMMON $COMPACT --loss siamese &
wait
echo "all runs done in $(( $(date +%s) - t0 )) s"
for r in dlib_a dlib_b dlib_cel compact compact_siamese; do tail -n 14 "$RUNS/$r.log"; done
for r in dlib_a dlib_b dlib_cel; do
  [ -f "$RUNS/$r/best_model.pt" ] && $PY -m faceapp.cli.train shard "$RUNS/$r/best_model.pt" --out "$OUT" --prefix "$r" --max-mb 15
done
[ -f "$RUNS/compact/best_model.pt" ] && cp "$RUNS/compact/best_model.pt" "$OUT/compact.pt"
tar -C "$RUNS" --exclude=last.pt --exclude='dlib_*/best_model.pt' -czf "$OUT/runs.tgz" .
ls -la "$OUT"
