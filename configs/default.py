"""Default experiment: the embedded smartwatch dataset on `smollm2-135m` (first 4 layers) + LoRA.

Override anything from the command line, e.g.
    python launch/train.py --config.lora.rank 4 --config.train.num_steps 200
    python launch/train.py --config configs/default.py:float32,backbone.num_layers=2
(`get_config(arg)`: presets and field settings after the file name, see configs/presets.py;
every config file in configs/ takes the same ARG). Sizes are chosen so the default k-shot sweep
finishes on a 2-core CPU (see README).
"""

import ml_collections

from configs import presets


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.dataset = "smartwatch"  # a registered name or csv:/path/to/folder
    c.data = ml_collections.ConfigDict()
    c.data.data_dir = ""  # '' -> $HARJAX_DATA_DIR or ~/.cache/harjax/tfds
    c.data.manual_dir = ""
    c.data.sample_rate = 50.0
    c.data.window_length = 128
    c.data.window_stride = 64
    # Gaps (NaN runs, missing timestamps) up to this long are interpolated, longer ones split the
    # recording: well below one step cycle (~0.5 s), so no movement is invented or erased.
    c.data.max_gap_s = 0.25
    c.data.channels = "all"  # 'all' | 'acc'
    c.data.label_key = "label"  # 'label' (the dataset's own) | 'common_label' (transfer)
    c.data.val_fraction = 0.2
    c.data.test_fraction = 0.2
    c.data.split_seed = 0
    c.data.split = "subject"  # 'subject' (seeded, subject-disjoint) | 'official'
    # Training-batch augmentation for every neural variant (`harjax.data.augment`), applied to
    # the raw windows before normalisation, never to validation/test: transforms is a
    # comma-separated subset of jitter,scaling,rotation,time_warp,permutation ('' = off).
    c.data.augment = ml_collections.ConfigDict()
    c.data.augment.transforms = ""
    c.data.augment.jitter_std = 0.05  # x the channel's std in the training windows
    c.data.augment.scaling_std = 0.1  # one factor N(1, std^2) per window and channel
    # uniform axis, angle in [-deg, deg]: 15 by validation (180, any angle, lost 0.1-0.4
    # macro-F1 on UCI-HAR: gravity's direction separates postures; docs/results/defaults/)
    c.data.augment.rotation_degrees = 15.0
    c.data.augment.time_warp_std = 0.2  # speed N(1, std^2) at each knot
    c.data.augment.time_warp_knots = 4
    c.data.augment.permutation_segments = 4

    c.backbone = ml_collections.ConfigDict()
    c.backbone.spec = "smollm2-135m"
    c.backbone.num_layers = 4  # layers kept (GPT4TS keeps 6 of GPT-2's 12)
    # Compute dtype: 'auto' = bfloat16 where the device multiplies it natively (TPU, GPUs with
    # compute capability >= 8, CPUs with AVX512_BF16/AMX), else float32 (measured: bf16 is
    # 1.6x faster than f32 on an AVX512_BF16 EPYC, 1.35x slower on an AVX2-only one).
    c.backbone.dtype = "auto"
    c.backbone.param_dtype = "float32"  # storage of the frozen weights

    c.model = ml_collections.ConfigDict()
    c.model.variant = "pretrained"  # harjax.variants.NAMES: pretrained | random | shuffled |
    # none | scratch | cnn | classical | rocket
    # random/shuffled: 'matched' = per-tensor moments (random) / permutation (shuffled) of the
    # pretrained tensors; 'init' = random only, the architecture's std-0.02 init (before issue 10)
    c.model.random_weights = "matched"
    c.model.pooling = "mean"
    c.model.head_dropout = 0.1
    c.model.tune_norms = False
    c.model.d_model_none = 128  # width of the 'none' variant (no backbone)
    c.model.readout_layers = ()  # () = last layer; else 0-based layer indices, concatenated
    c.model.final_norm = True  # apply the backbone's final norm to the layers read
    c.model.skip_first_token = False  # leave the first (attention-sink) position out of 'mean'
    c.model.standardize_features = False  # per-feature z-score, statistics fixed at init

    c.projection = ml_collections.ConfigDict()
    c.projection.kernel_sizes = (3, 5, 9)
    c.projection.channels = 32
    c.projection.strides = (2, 2)
    c.projection.output_scale_init = 1.0
    # 'none' | 'embedding_rms' (output RMS = token embeddings'); 'none' by validation evidence
    c.projection.calibrate = "none"
    # 'channel' (LayerNorm per step; blind to intensity) | 'amplitude' (the same + each channel's
    # log std over the window) | 'time' (RMS over time per channel, log-RMS added back)
    # 'amplitude' by validation evidence (docs/results/defaults/): no worse than 'channel' in any
    # paired comparison and it keeps the movement's intensity; 'channel' is the ablation row.
    c.projection.norm = "amplitude"
    c.projection.magnitude_channels = False  # append |acc|, |gyro| as input channels

    c.lora = ml_collections.ConfigDict()
    c.lora.rank = 8
    c.lora.alpha = 16.0
    c.lora.dropout = 0.0
    c.lora.targets = ""  # '' | 'attention' | 'attention+mlp' (family presets) | a regex

    c.scratch = ml_collections.ConfigDict()
    c.scratch.num_layers = 2
    c.scratch.hidden_size = 128
    c.scratch.intermediate_size = 256
    c.scratch.num_heads = 4

    # The 'cnn' variant: a plain 1-D CNN (num_layers x Conv1D + ReLU, mean pool, dropout
    # model.head_dropout, Dense), the field's default baseline; everything trains.
    c.cnn = ml_collections.ConfigDict()
    c.cnn.num_layers = 3
    c.cnn.channels = 64
    c.cnn.kernel_size = 5

    c.classical = ml_collections.ConfigDict()
    c.classical.num_trees = 300

    # The 'rocket' variant (`harjax.variants.rocket`; needs the `baselines` extra): MultiRocket
    # features of the raw windows (num_kernels as published: 6,250 -> 49,728 features), then a
    # ridge classifier with this regularisation (a study chooses it on validation:
    # sweep.rocket_alphas).
    c.rocket = ml_collections.ConfigDict()
    c.rocket.num_kernels = 6250
    c.rocket.ridge_alpha = 10.0

    c.optim = ml_collections.ConfigDict()
    c.optim.learning_rate = 2e-3
    c.optim.warmup_steps = 20
    c.optim.weight_decay = 0.01
    c.optim.grad_clip = 1.0
    c.optim.label_smoothing = 0.0
    # The LoRA adapters' own peak learning rate (a second AdamW parameter group); 0 = the same
    # as learning_rate (one group).
    c.optim.lora_learning_rate = 0.0

    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 32
    c.train.num_steps = 300  # the budget, or with `epochs` the largest budget
    c.train.eval_every = 50
    # Training to convergence (`harjax.run.budget`), all off by default. epochs > 0: budget
    # ceil(epochs * windows / batch_size) steps, clipped to [min_steps, num_steps];
    # evals_per_epoch > 0: eval_every = max(1, min(eval_every, steps_per_epoch //
    # evals_per_epoch)); patience > 0: stop after that many evaluations without a better
    # validation macro-F1, never before min_steps.
    c.train.epochs = 0.0
    c.train.min_steps = 0
    c.train.patience = 0
    c.train.evals_per_epoch = 0
    c.train.eval_batch_size = 128
    c.train.log_every = 10
    c.train.checkpoint_every = 100
    c.train.max_eval_windows = 0  # validation windows per eval (0 = all); a seeded subsample
    # A sweep trains up to this many runs of one `harjax.run.program.group_key` (same shapes and
    # schedule; seeds, learning rates, k-shot windows and frozen weights may differ) in one loop,
    # each model in the compiled program of its own config: the results are the same for any
    # value; 1 = one run at a time.
    c.train.models_per_program = 8
    # The axes of the sweep this config runs: `harjax.sweeps.fewshot.run_sweep(config, workdir)`
    # reads them (the launch script's flags only write into them, the notebook sets them).
    # Not part of any run's fingerprint: what else a command runs, not what a run is.
    c.sweep = ml_collections.ConfigDict()
    c.sweep.shots = "1,5,10"
    c.sweep.with_all = True  # add k = 'all' (every training window) to sweep.shots
    c.sweep.seeds = 3
    c.sweep.splits = 1  # split seeds data.split_seed + 0, 1, ...
    # (rocket needs the optional `baselines` extra: the studies run it, the quickstart not.)
    c.sweep.variants = "pretrained,random,shuffled,none,scratch,cnn,classical"
    c.sweep.learning_rates = ""  # '' = optim.learning_rate only
    c.sweep.classical_trees = ""  # '' = classical.num_trees only
    c.sweep.rocket_alphas = ""  # '' = rocket.ridge_alpha only
    # Extra 'pretrained' rows, ';'-separated section.field=value (typed like the field; tuples
    # with ',' or 'x'), e.g. "lora.rank=0;projection.kernel_sizes=3,5,9,15;projection.norm=time"
    c.sweep.ablate = ""
    # A depth axis: '' = backbone.num_layers only; e.g. "1,3,6,12,30" = the whole sweep once per
    # depth, in WORKDIR/layers<N>/, so every paired comparison is within one depth.
    c.sweep.num_layers = ""
    return presets.apply(c, arg)
