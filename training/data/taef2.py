"""TAEF2, a tiny stand-in for the FLUX.2 image autoencoder, used to make *aligned fakes*.

A real photo passed through a latent generator's autoencoder differs from its original only by
the decoder's traces, so a detector trained on both learns those traces instead of content
(Rajan et al., ICLR 2025; B-Free, Guillaro et al., CVPR 2025). The layers follow the layout of
the published weights (madebyollin/taesd, MIT): ``nn.Sequential`` indices are the state-dict
keys, so a faithful layout loads with ``strict=True``. For making training data only: no
bundle or served model ever contains these weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

LATENT_CHANNELS = 32
WIDTH = 64
SCALE = 8  # the latent is 1/SCALE of each side: sides must be a multiple of it
ENCODER_FILE, DECODER_FILE = "taef2_encoder.pth", "taef2_decoder.pth"
DEFAULT_WEIGHTS = Path("..") / "shared" / "weights" / "taef2"  # relative to the repository root


def conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Block(nn.Module):
    """Three convolutions with a residual skip: ReLU(conv(x) + x)."""

    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.conv = nn.Sequential(conv(width, width), nn.ReLU(), conv(width, width), nn.ReLU(), conv(width, width))
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.conv(x) + self.skip(x))


class GNBlock(Block):
    """A Block preceded by a residual 1x1 bottleneck with GroupNorm (x = x + pool(x))."""

    def __init__(self, width: int = WIDTH, hidden: int = 4 * WIDTH, groups: int = 4):
        super().__init__(width)
        self.pool = nn.Sequential(
            nn.Conv2d(width, hidden, 1, bias=False), nn.GroupNorm(groups, hidden), nn.ReLU(),
            nn.Conv2d(hidden, width, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x + self.pool(x))


class SoftClamp(nn.Module):
    """tanh(x / 3) * 3: keeps latents in a range the decoder was trained on."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


def encoder() -> nn.Sequential:
    """RGB in [0, 1], [N, 3, H, W] -> latent [N, 32, H/8, W/8]."""
    def down() -> nn.Conv2d:
        return conv(WIDTH, WIDTH, stride=2, bias=False)

    return nn.Sequential(
        conv(3, WIDTH), Block(),
        down(), Block(), Block(), Block(),
        down(), Block(), Block(), Block(),
        down(), GNBlock(), GNBlock(), GNBlock(),
        conv(WIDTH, LATENT_CHANNELS),
    )


def decoder() -> nn.Sequential:
    """Latent [N, 32, h, w] -> RGB [N, 3, 8h, 8w] (unclamped: see ``Autoencoder``)."""
    def up() -> list[nn.Module]:
        return [nn.Upsample(scale_factor=2), conv(WIDTH, WIDTH, bias=False)]

    return nn.Sequential(
        SoftClamp(), conv(LATENT_CHANNELS, WIDTH), nn.ReLU(),
        GNBlock(), GNBlock(), GNBlock(),
        *up(), Block(), Block(), Block(),
        *up(), Block(), Block(), Block(),
        *up(), Block(),
        conv(WIDTH, 3),
    )


class Autoencoder(nn.Module):
    """Encoder then decoder, output clamped to [0, 1]: the aligned twin of a picture."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = encoder(), decoder()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        if height % SCALE or width % SCALE:
            raise ValueError(f"TAEF2 needs sides that are a multiple of {SCALE}, got {width}x{height}")
        return self.decoder(self.encoder(image)).clamp(0, 1)


@dataclass(frozen=True)
class WeightFiles:
    """The two state dicts of a TAEF2 weights folder."""

    folder: Path

    @property
    def encoder(self) -> Path:
        return self.folder / ENCODER_FILE

    @property
    def decoder(self) -> Path:
        return self.folder / DECODER_FILE

    def missing(self) -> list[Path]:
        return [path for path in (self.encoder, self.decoder) if not path.is_file()]


def load_autoencoder(folder: str | Path = DEFAULT_WEIGHTS) -> Autoencoder:
    """The autoencoder with the weights of ``folder`` (fp16 files, loaded as fp32), in eval mode."""
    files = WeightFiles(Path(folder))
    if files.missing():
        raise FileNotFoundError(f"TAEF2 weights not found: {', '.join(map(str, files.missing()))}")
    model = Autoencoder()
    model.encoder.load_state_dict(torch.load(files.encoder, map_location="cpu", weights_only=True), strict=True)
    model.decoder.load_state_dict(torch.load(files.decoder, map_location="cpu", weights_only=True), strict=True)
    return model.eval()
