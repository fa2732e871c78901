"""A tower run at another input size than it was pretrained at (``image.tower_size``): fewer patch
tokens, the pretrained positional embedding resampled to the new grid."""

from __future__ import annotations

import pytest
import torch

from genspot.training.model.branches import BranchBuildError, ImageBranch
from genspot.training.config import ConfigError, ImageBranchConfig

TOWER = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8}}


def _config(weights, pooled="layers", **changes) -> ImageBranchConfig:
    return ImageBranchConfig(enabled=True, model_name="tiny-vit", pretrained=weights, pooled=pooled, model_cfg=TOWER, **changes)


@pytest.fixture
def pretrained(tmp_path):
    """A tower pretrained at 32 px (a 4 x 4 grid) saved as a checkpoint, with a constant patch
    positional embedding (so its resampling is known) and a distinct class-token row."""
    torch.manual_seed(0)
    tower = ImageBranch(_config(None, pooled="projection")).visual  # a whole tower, projection included
    with torch.no_grad():
        tower.positional_embedding[0] = 5.0
        tower.positional_embedding[1:] = torch.linspace(-1, 1, 32)
    path = tmp_path / "tower.pt"
    torch.save({f"visual.{k}": v for k, v in tower.state_dict().items()}, path)
    return path, tower


@torch.no_grad()
def test_a_smaller_tower_keeps_the_weights_and_resamples_the_positional_grid(pretrained):
    path, source = pretrained
    small = ImageBranch(_config(str(path), tower_size=16)).eval()
    assert small.input_size == 16
    assert small.visual.positional_embedding.shape == (1 + 2 * 2, 32)
    torch.testing.assert_close(small.visual.positional_embedding[0], source.positional_embedding[0])
    torch.testing.assert_close(small.visual.positional_embedding[1:], source.positional_embedding[1:5])
    torch.testing.assert_close(small.visual.conv1.weight, source.conv1.weight)
    assert small(torch.rand(2, 3, 64, 64)).shape == (2, 2 * 32), "any input is resized to the tower's side"


def test_the_tower_size_must_fit_the_patches(pretrained):
    with pytest.raises(BranchBuildError, match="not a multiple of the tower's patch size 8"):
        ImageBranch(_config(str(pretrained[0]), tower_size=20))
    with pytest.raises(ConfigError, match="tower_size must be a positive number of pixels"):
        _config(None, tower_size=0)
