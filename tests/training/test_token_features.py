"""Block choice and patch-token statistics of the image branch, and the feature cache that serves
every choice of blocks from one pass over the pictures."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genspot.training.model.branches import BranchBuildError, ImageBranch, feature_store_config
from genspot.training.config import ConfigError, ImageBranchConfig

TOWER = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 4, "width": 32, "head_width": 16, "patch_size": 8}}


def branch(**changes) -> ImageBranch:
    torch.manual_seed(0)
    config = ImageBranchConfig(enabled=True, model_name="tiny-vit", pretrained=None, pooled="layers", model_cfg=TOWER)
    return ImageBranch(dataclasses.replace(config, **changes)).eval()


@torch.no_grad()
def test_chosen_blocks_and_token_stats_are_columns_of_the_full_feature():
    full, chosen = branch(), branch(blocks=(1, 2), token_stats=True)
    chosen.load_state_dict(full.state_dict())
    image = torch.rand(3, 3, 32, 32)
    everything = full.features(image, list(range(full.depth)), True)
    assert everything.shape == (3, 4 * 3 * 32)
    assert chosen.output_dim == 2 * 3 * 32
    assert torch.equal(chosen(image), everything[:, chosen.store_columns()])
    # class tokens alone: the former layout (the last block's class token computed by itself)
    torch.testing.assert_close(full(image), everything[:, full.store_columns()], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_the_last_chosen_block_computes_its_class_token_alone():
    full, cut = branch(), branch(blocks=(0, 2))
    cut.load_state_dict(full.state_dict())
    seen = {}

    def count_tokens(index):
        def hook(_module, args):
            seen[index] = args[0].shape[1]

        return hook

    for index, block in enumerate(cut.visual.transformer.resblocks):
        block.mlp.register_forward_pre_hook(count_tokens(index))
    image = torch.rand(3, 3, 32, 32)
    everything = full.features(image, list(range(full.depth)), True)
    torch.testing.assert_close(cut(image), everything[:, cut.store_columns()], rtol=1e-5, atol=1e-5)
    assert seen == {0: 17, 1: 17, 2: 1}, "blocks 0-1 see every token, block 2 only the class token, block 3 never runs"


@torch.no_grad()
def test_token_stats_are_the_mean_and_spread_of_the_normalised_patch_tokens():
    model = branch(blocks=(3,), token_stats=True)
    image = torch.rand(2, 3, 32, 32)
    visual = model.visual
    tokens = visual.transformer(visual._embeds((image - model.mean) / model.std))
    normed = visual.ln_post(tokens)
    expected = torch.cat([normed[:, 0], normed[:, 1:].mean(1), normed[:, 1:].std(1, unbiased=False)], dim=1)
    torch.testing.assert_close(model(image), expected)


def test_the_cache_holds_every_block_with_its_statistics():
    config = ImageBranchConfig(enabled=True, pooled="layers", blocks=(0, 4), model_cfg=TOWER, pretrained=None)
    assert feature_store_config(config) == dataclasses.replace(config, blocks=(), token_stats=True)
    pooled = ImageBranchConfig(enabled=True, model_cfg=TOWER, pretrained=None)
    assert feature_store_config(pooled) is pooled


def test_bad_block_choices_are_named():
    with pytest.raises(ConfigError, match="increasing order"):
        ImageBranchConfig(enabled=True, pooled="layers", blocks=(3, 1))
    with pytest.raises(ConfigError, match='need pooled "layers"'):
        ImageBranchConfig(enabled=True, token_stats=True, model_cfg=TOWER)
    with pytest.raises(BranchBuildError, match="blocks 0-3"):
        branch(blocks=(4,))


def test_a_cache_that_only_served_reads_is_not_rewritten(tmp_path):
    """Runs reading one full cache side by side must not rewrite (and race on) its file."""
    from genspot.training.model.features import FeatureStore

    path = tmp_path / "image-x.pt"
    store = FeatureStore(path)
    store.add(["a", "b"], torch.ones(2, 3))
    store.save()
    written = path.stat().st_mtime_ns
    again = FeatureStore(path)
    assert again.missing(["a", "b"]) == [] and torch.equal(again.rows(["b"]), torch.ones(1, 3))
    path.unlink()
    again.save()
    assert not path.exists(), "nothing was added, so nothing is written"
    again.add(["c"], torch.zeros(1, 3))
    again.save()
    assert FeatureStore(path).keys == ["a", "b", "c"] and written


@torch.no_grad()
def test_views_stacked_on_channels_run_the_tower_each_and_concatenate_in_order():
    single = branch(blocks=(1, 3))
    torch.manual_seed(0)
    config = ImageBranchConfig(enabled=True, model_name="tiny-vit", pretrained=None, pooled="layers", model_cfg=TOWER, blocks=(1, 3))
    two = ImageBranch(config, views=2).eval()
    two.load_state_dict(single.state_dict())
    whole, crop = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)
    assert two.output_dim == 2 * single.output_dim
    torch.testing.assert_close(two(torch.cat([whole, crop], dim=1)), torch.cat([single(whole), single(crop)], dim=1))
