"""The resolved config is checked once, up front: one line per problem, before data loads."""

import pytest

from harjax.run import loop
from harjax.run.validate import ConfigError, check_config, problems
from tests.helpers import tiny_config


def test_the_default_configs_are_valid():
    from configs.default import get_config as default
    from configs.fewshot import get_config as fewshot
    from configs.transfer import get_config as transfer

    for config in (default(), fewshot(), transfer()):
        assert problems(config) == []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("train.num_steps", -5, "config.train.num_steps must be an integer >= 1, found -5"),
        ("train.eval_every", 0, "config.train.eval_every must be an integer >= 1, found 0"),
        ("train.batch_size", 0, "config.train.batch_size must be an integer >= 1, found 0"),
        ("data.val_fraction", 1.0, "config.data.val_fraction must be a fraction in [0, 1)"),
        ("optim.learning_rate", 0.0, "config.optim.learning_rate must be a number > 0"),
        ("projection.strides", (2, 0), "config.projection.strides must be a non-empty list"),
        ("lora.rank", -1, "config.lora.rank must be an integer >= 0, found -1"),
        ("model.variant", "big", "config.model.variant must be one of"),
        ("data.window_stride", 0, "config.data.window_stride must be an integer >= 1"),
        ("projection.norm", "layer", "config.projection.norm must be one of"),
        ("cnn.kernel_size", 0, "config.cnn.kernel_size must be an integer >= 1, found 0"),
    ],
)
def test_each_bad_field_is_named(key, value, message):
    config = tiny_config("pretrained")
    section, field = key.split(".")
    config[section][field] = value
    found = problems(config)
    assert any(message in line for line in found), found


def test_every_problem_gets_its_own_line_and_zero_steps_only_when_asked():
    config = tiny_config("none")
    config.train.num_steps = 0
    config.train.eval_every = 0
    with pytest.raises(ConfigError) as error:
        check_config(config)
    lines = str(error.value).splitlines()
    assert lines[0] == "invalid config:" and len(lines) == 3
    config.train.eval_every = 10
    check_config(config, zero_steps=True)  # zero-shot transfer evaluates without training


def test_strides_that_do_not_divide_the_window_and_scratch_heads():
    config = tiny_config("scratch", window_length=30)
    config.scratch.hidden_size = 15
    found = problems(config)
    assert any("window_length 30 is not divisible by the projection's total stride 4" in line
               for line in found)  # fmt: skip


def test_a_bad_config_fails_before_the_dataset_loads(tmp_path):
    config = tiny_config("pretrained")
    config.dataset = "csv:" + str(tmp_path / "nowhere")  # would fail later, when loading
    config.backbone.spec = "./not-a-checkpoint"
    config.train.num_steps = -5
    with pytest.raises(ConfigError) as error:
        loop.train_and_evaluate(config, tmp_path / "run", progress=False)
    message = str(error.value)
    assert "config.train.num_steps" in message and "config.backbone.spec" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("transforms", "rotation,flip", "config.data.augment.transforms: expected distinct names"),
        ("rotation_degrees", 360.0, "config.data.augment.rotation_degrees must be in [0, 180]"),
        ("jitter_std", -0.1, "config.data.augment.jitter_std must be >= 0"),
    ],
)
def test_bad_augmentation_settings_are_named(field, value, message):
    config = tiny_config("cnn")
    config.data.augment[field] = value
    assert any(message in line for line in problems(config)), problems(config)
