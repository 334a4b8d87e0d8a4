"""`load_data`'s bundle: what a launch script prints before a run trains."""

from pathlib import Path

from configs import default
from harjax.data.bundle import load_data

REAL_UCI_HAR = Path(__file__).parent / "real" / "uci_har"


def test_describe_names_build_report_windows_subjects_and_classes(tmp_path):
    config = default.get_config()
    config.dataset = "uci_har"
    config.data.manual_dir = str(REAL_UCI_HAR)
    config.data.data_dir = str(tmp_path)
    config.data.split = "official"
    bundle = load_data(config)
    text = bundle.describe()
    lines = text.splitlines()
    assert lines[0].startswith("uci_har: 277 windows of 6 channels")
    assert "build report: " in lines[0] and "windows {" in lines[0]  # Report.summary
    assert lines[1].startswith("split 'official' (seed 0), classes (label) ['WALKING',")
    parts = {line.split(":")[0].strip(): line for line in lines[2:]}
    assert set(parts) == {"train", "val", "test"}
    assert "test: 77 windows, 1 subjects ['9']" in parts["test"]
    total = sum(int(line.split(":")[1].split()[0]) for line in lines[2:])
    assert total == 277  # every window in exactly one part
    assert "'LAYING':" in parts["train"]
