#!/bin/bash
# How the input and readout defaults were chosen (issue 10, points 1, 2 and 4): one
# `launch/fewshot.py` sweep per setting, configs/fewshot.py otherwise, k = 5 and all,
# 2 subject splits x 2 seeds, on validation macro-F1 only. Each setting differs from A_channel
# (the defaults before the choice) in the flags shown; `paired.py` prints the paired table.
set -e
OUT=${1:-runs/defaults}
run() { name=$1; shift
  python launch/fewshot.py --config configs/fewshot.py --workdir "$OUT/$name" --shots 5 "$@"
}
base=(--config.projection.norm channel)  # the projection before issue 10
run A_channel       --variants pretrained,none "${base[@]}"
run B_time          --variants pretrained,none --config.projection.norm time
run C_time_cal      --variants pretrained,none --config.projection.norm time --config.projection.calibrate embedding_rms
run E_channel_cal   --variants pretrained,none "${base[@]}" --config.projection.calibrate embedding_rms
run F_time_mag      --variants pretrained,none --config.projection.norm time --config.projection.magnitude_channels=True
run G_channel_long  --variants pretrained,none "${base[@]}" --config.train.min_steps=150 --config.train.patience=8
run H_channel_mag   --variants pretrained,none "${base[@]}" --config.projection.magnitude_channels=True
run I_amplitude     --variants pretrained,none --config.projection.norm amplitude
run J_amplitude_mag --variants pretrained,none --config.projection.norm amplitude --config.projection.magnitude_channels=True
run K_skip_first    --variants pretrained "${base[@]}" --config.model.skip_first_token=True
run L_standardize   --variants pretrained "${base[@]}" --config.model.standardize_features=True
run M_no_final_norm --variants pretrained "${base[@]}" --config.model.final_norm=False
run N_lora_mlp      --variants pretrained "${base[@]}" --config.lora.targets attention+mlp
