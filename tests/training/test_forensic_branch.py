"""ForensicBranch: shapes, residual properties, TorchScript tracing with dynamic batch, bf16."""

from __future__ import annotations

import pytest
import torch

from genspot.training.forensic import BlockDCTEnergy, ForensicBranch, GlobalStatistics, npr_residual

TINY = dict(channels=4, depth=2, output_dim=8)


def test_npr_residual_vanishes_on_nearest_upsampled_image():
    small = torch.rand(2, 3, 16, 16)
    upsampled = torch.nn.functional.interpolate(small, scale_factor=2, mode="nearest")
    assert npr_residual(upsampled).abs().max().item() == 0.0


def test_npr_residual_is_nonzero_on_noise_and_zero_at_cell_anchors():
    image = torch.rand(1, 3, 32, 32)
    residual = npr_residual(image)
    assert residual[:, :, 0::2, 0::2].abs().max().item() == 0.0
    assert residual.abs().mean().item() > 0.1


def test_npr_residual_matches_reference_interpolate_definition():
    image = torch.rand(2, 3, 24, 24)
    reference = image - torch.nn.functional.interpolate(
        torch.nn.functional.interpolate(image, scale_factor=0.5, mode="nearest"), scale_factor=2, mode="nearest"
    )
    torch.testing.assert_close(npr_residual(image), reference)


@pytest.mark.parametrize("residual", ["npr", "highpass", "npr+highpass"])
def test_output_shape_and_output_dim(residual):
    branch = ForensicBranch(residual=residual, **TINY).eval()
    features = branch(torch.rand(3, 3, 64, 64))
    assert branch.output_dim == 8
    assert features.shape == (3, 8)
    assert torch.isfinite(features).all()


def test_highpass_ignores_flat_images():
    branch = ForensicBranch(residual="highpass", **TINY).eval()
    flat = torch.full((1, 3, 32, 32), 0.3)
    inner = branch.residuals(flat)[:, :, 1:-1, 1:-1]
    assert inner.abs().max().item() < 1e-6


def test_branch_is_blind_to_constant_brightness_shift():
    """Residual inputs remove the image's low-frequency content, so a brightness offset changes nothing."""
    branch = ForensicBranch(residual="npr", **TINY).eval()
    image = torch.rand(2, 3, 32, 32) * 0.5
    torch.testing.assert_close(branch(image), branch(image + 0.25), atol=1e-5, rtol=1e-4)


def test_global_statistics_are_normalised_histograms():
    stats = GlobalStatistics(truncation=2)
    features = stats(torch.rand(2, 3, 32, 32))
    assert features.shape == (2, stats.num_features)
    cooccurrences = features[:, : 3 * 5 * 25].reshape(2, 15, 25)
    torch.testing.assert_close(cooccurrences.sum(-1), torch.ones(2, 15))


def test_global_statistics_see_a_flat_image_as_all_zero_residuals():
    features = GlobalStatistics(truncation=2)(torch.full((1, 3, 16, 16), 0.5))
    cooccurrences = features[:, : 3 * 5 * 25].reshape(15, 25)
    zero_pair = 2 * 5 + 2  # both neighbours' residual 0
    assert torch.all(cooccurrences[:, zero_pair] == 1.0)


def test_global_statistics_separate_smooth_from_noisy_images():
    stats = GlobalStatistics()
    smooth = torch.linspace(0, 1, 64).repeat(1, 3, 64, 1)
    noisy = torch.rand(1, 3, 64, 64)
    assert (stats(smooth) - stats(noisy)).abs().sum().item() > 1.0


def test_block_dct_energy_matches_a_reference_dct():
    """Mean squared 8x8 DCT-II coefficients per frequency, computed here from the textbook formula."""
    pixels = torch.rand(2, 3, 16, 24) * 255
    gray = (pixels * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, dtype=torch.float64)
    k = torch.arange(8, dtype=torch.float64)
    basis = torch.cos(torch.pi * (2 * k[None] + 1) * k[:, None] / 16) * torch.where(k == 0, (1 / 8) ** 0.5, (2 / 8) ** 0.5)[:, None]
    blocks = gray.unfold(1, 8, 8).unfold(2, 8, 8)  # [2, 2, 3, 8, 8]
    energy = (basis @ blocks @ basis.T).pow(2).mean(dim=(1, 2)).flatten(1)
    features = BlockDCTEnergy()(pixels)
    assert features.shape == (2, BlockDCTEnergy.num_features)
    torch.testing.assert_close(features[:, :64].double(), torch.log(energy + 1e-3), atol=1e-3, rtol=1e-4)


def test_block_dct_energy_of_a_flat_image_is_only_dc():
    features = BlockDCTEnergy()(torch.full((1, 3, 16, 16), 200.0))
    luma = features[0, :64]
    assert luma[0] > 10 and torch.all(luma[1:] < -6)  # log(1e-3) for every AC frequency


def test_block_dct_energy_ignores_bf16_autocast():
    dct, pixels = BlockDCTEnergy(), torch.rand(2, 3, 32, 32) * 255
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = dct(pixels)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, dct(pixels))


def test_global_statistics_append_the_dct_spectrum():
    image = torch.rand(2, 3, 32, 32)
    plain, with_dct = GlobalStatistics(), GlobalStatistics(dct=True)
    assert with_dct.num_features == plain.num_features + BlockDCTEnergy.num_features
    features = with_dct(image)
    assert features.shape == (2, with_dct.num_features)
    torch.testing.assert_close(features[:, : plain.num_features], plain(image))


def test_thumbnail_path_sees_what_residuals_cannot():
    """The thumbnail CNN reads the picture itself, so (unlike the residual path) a brightness shift changes the output."""
    torch.manual_seed(0)
    branch = ForensicBranch(residual="npr", thumbnail_stride=4, thumbnail_channels=4, **TINY).eval()
    image = torch.rand(2, 3, 64, 64) * 0.5
    residual_only = ForensicBranch(residual="npr", **TINY).eval()
    assert (residual_only(image) - residual_only(image + 0.25)).abs().max().item() < 1e-6
    assert (branch(image) - branch(image + 0.25)).abs().max().item() > 1e-5
    assert branch(torch.rand(3, 3, 128, 128)).shape == (3, TINY["output_dim"])  # training crops and test images alike


@pytest.mark.parametrize(
    "params",
    [
        dict(residual="npr+highpass"),
        dict(residual="npr", stats=True, dct_stats=True),
        dict(residual="npr", thumbnail_stride=4),
    ],
)
def test_traced_module_accepts_other_batch_sizes(params):
    branch = ForensicBranch(**params, **TINY).eval()
    traced = torch.jit.trace(branch, torch.rand(2, 3, 64, 64))
    for batch in (1, 5):
        image = torch.rand(batch, 3, 64, 64)
        torch.testing.assert_close(traced(image), branch(image))


def test_runs_under_bf16_autocast_close_to_fp32():
    branch = ForensicBranch(**TINY).eval()
    image = torch.rand(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = branch(image)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), branch(image), atol=0.05, rtol=0.05)


def test_gradients_reach_the_stem():
    branch = ForensicBranch(**TINY)
    branch(torch.rand(2, 3, 32, 32)).sum().backward()
    assert branch.stem[0].weight.grad.abs().sum().item() > 0


def test_unknown_residual_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown residual kind"):
        ForensicBranch(residual="wavelet")
