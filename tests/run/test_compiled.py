"""The compiled-step cache key: one per model structure, whatever the variant."""

import jax

from harjax import train
from harjax.run.compiled import StepCache
from harjax.variants import assemble
from tests.helpers import tiny_config


def _key(variant, seed=0, **sizes):
    config = tiny_config(variant)
    for section, value in sizes.items():
        config[section].num_layers = value
    built = assemble.assemble(config, num_classes=3, num_channels=6, rng=jax.random.key(seed))
    return StepCache.key(config, built, 3, 6, train.data_mesh())


def test_one_key_per_structure_seeds_share_it():
    assert _key("cnn", seed=0) == _key("cnn", seed=1)
    assert _key("cnn", cnn=1) != _key("cnn", cnn=2)  # a variant's own section, via its module
    assert _key("scratch", scratch=1) != _key("scratch", scratch=2)
    assert _key("none", scratch=1) == _key("none", scratch=2)  # a section it does not read
    assert len({_key(name) for name in ("none", "scratch", "cnn")}) == 3
