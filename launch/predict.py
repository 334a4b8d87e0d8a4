"""Classify a recording with a trained run: a header, then one tab-separated line per window
(`start_s  label  confidence`: start time in seconds, predicted class, its probability).

    python launch/predict.py --checkpoint runs/train --csv my_recording.csv [--export DIR]

`--checkpoint` is a run directory written by launch/train.py (or one run of a few-shot sweep,
e.g. runs/fewshot/runs/pretrained/kall_seed0). The CSV uses the format of docs/data.md
(`label`/`subject` columns optional) and is read, checked, gap-filled and resampled the way
training reads a `csv:` folder (`harjax.predict.read_recording`). `--export DIR` also writes
the LoRA-merged weights.
"""

from absl import flags

from harjax import cli, predict

flags.DEFINE_string("checkpoint", None, "Run directory (with config.json and checkpoints/).")
flags.DEFINE_string("csv", None, "CSV recording to classify.")
flags.DEFINE_string("export", None, "Also write merged inference weights to this directory.")
flags.mark_flags_as_required(["checkpoint", "csv"])


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    predictor = predict.load_predictor(f.checkpoint)
    rows = predict.predict_csv(f.checkpoint, f.csv, predictor=predictor)
    print("start_s\tlabel\tconfidence")
    for start, label, confidence in rows:
        print(f"{start:.2f}\t{label}\t{confidence:.3f}")
    if f.export:
        path = predict.export(predictor, f.export)
        print(f"exported merged weights to {path}")


if __name__ == "__main__":
    cli.run(main)
