#!/bin/bash
# Is training-batch augmentation (data.augment, harjax/data/augment.py) on by default? Decided on
# validation macro-F1 only, like the other defaults here: one `launch/fewshot.py` sweep per
# setting with configs/fewshot.py (k = 5 and all, 2 splits x 2 seeds, learning rate 2e-3),
# variants pretrained, none and cnn, on two real datasets: UCI-HAR (the reduced real copy,
# official split, validation subjects drawn from the training subjects) and the embedded
# smartwatch set. Rotation at any angle (180) and at most 15 degrees (a sensor's placement
# varies by a few degrees; gravity's direction separates postures). `paired.py ROOT/DATASET --base O_off` prints each setting's paired
# validation difference against no augmentation. Resumable: rerun the same command.
set -e
OUT=${1:-runs/augment}
UCI_HAR=${UCI_HAR:-../shared/data/uci_har_reduced}
run() { dataset=$1; name=$2; transforms=$3; shift 3
  if [ "$dataset" = uci_har ]; then
    data=(--config.dataset uci_har --config.data.split official --config.data.manual_dir "$UCI_HAR")
  else
    data=()
  fi
  python launch/fewshot.py --config configs/fewshot.py --workdir "$OUT/$dataset/$name" \
    --shots 5 --variants pretrained,none,cnn "${data[@]}" \
    --config.data.augment.transforms "$transforms" "$@"
}
mild=(--config.data.augment.rotation_degrees 15)
for dataset in ${DATASETS:-uci_har smartwatch}; do
  run $dataset O_off ""
  run $dataset P_rotation rotation
  run $dataset Q_standard jitter,scaling,rotation,time_warp
  run $dataset S_rotation15 rotation "${mild[@]}"
  run $dataset T_jitter_scaling jitter,scaling
  run $dataset U_standard15 jitter,scaling,rotation,time_warp "${mild[@]}"
done
