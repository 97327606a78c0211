"""The one place that names architectures and built-in datasets. Needs no torch.

The command line takes its choices from here without importing torch, and `mwt.models` builds a
network from an entry (one generic constructor per family, as timm's registry does).
"""

from __future__ import annotations

from dataclasses import dataclass

from mwt.core.errors import MwtError

VGG16_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)
VGG11_LAYOUT: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


@dataclass(frozen=True)
class Architecture:
    """How to build one registered network.

    family "vgg": `layout` lists conv widths and "M" (max-pool), torchvision-style; `classifier`
    is the number of linear layers after global pooling; `residual` lists (from, to) conv indices
    whose outputs are summed before the activation of conv `to`. family "resnet": `layout` gives
    the BasicBlocks per stage.
    """

    family: str
    layout: tuple[int | str, ...]
    classifier: int = 3
    residual: tuple[tuple[int, int], ...] = ()
    summary: str = ""


MODELS: dict[str, Architecture] = {
    "vgg16": Architecture("vgg", VGG16_LAYOUT, summary="VGG16-BN (CIFAR-style, 3 linear layers)"),
    "vgg11": Architecture("vgg", VGG11_LAYOUT, summary="VGG11-BN (CIFAR-style, 3 linear layers)"),
    # SimCNN and ResCNN (the CNNSplitter/MwT evaluations) are VGG16's convs with a 2-layer classifier;
    # ResCNN adds residual sums around the 3rd-4th and 11th-13th convs.
    "simcnn": Architecture("vgg", VGG16_LAYOUT, classifier=2, summary="SimCNN: VGG16 convs, 2 linear layers"),
    "rescnn": Architecture("vgg", VGG16_LAYOUT, classifier=2, residual=((2, 3), (10, 12)),
                           summary="ResCNN: SimCNN with two residual sums"),
    "resnet18": Architecture("resnet", (2, 2, 2, 2), summary="ResNet18 (CIFAR-style 3x3 stem, gated downsample)"),
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset: classes, image shape, normalization."""

    name: str
    classes: tuple[str, ...]
    channels: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pad: int = 0  # zero pixels added on each side before the network (Fashion-MNIST 28 -> 32)
    augment: str = "none"  # "none", "crop", or "crop-flip": applied to training batches only


DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"),
        1, (28, 28), (0.2860,), (0.3530,), pad=2,
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        3, (32, 32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), augment="crop-flip",
    ),
    "svhn": DatasetInfo(
        "svhn", tuple(str(d) for d in range(10)),
        3, (32, 32), (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), augment="crop",
    ),
}

MAX_WIDTH = 4.0

# Networks built from torchvision's constructors (mwt.models.torchvision_models) are named
# "torchvision:<registry name>"; their stem can be adapted to small images.
TORCHVISION_PREFIX = "torchvision:"
STEMS = ("default", "cifar")
# What the gate losses train (TrainConfig.gate_losses): the whole network, as in MwT, or the mask
# generators only.
GATE_LOSS_SCOPES = ("network", "generators")


# A user's own network: "code:<function>" in a checkpoint, rebuilt only from the file the command
# line names with --model-code (mwt.models.user_code); training takes "<file.py>:<function>".
CODE_PREFIX = "code:"


def is_user_code(name: str) -> bool:
    """Whether a model name refers to a user's function (never imported from a checkpoint)."""
    return name.startswith(CODE_PREFIX)


def is_code_reference(value: str) -> bool:
    """Whether a --model value names a function in a Python file ('net.py:build')."""
    path, sep, function = value.rpartition(":")
    return bool(sep) and path.endswith(".py") and function.isidentifier()


def is_constructed(name: str) -> bool:
    """A network built by a constructor (torchvision's or a user's) with gates inserted, not from MODELS."""
    return is_torchvision(name) or is_user_code(name)


def is_torchvision(name: str) -> bool:
    """Whether a model name refers to torchvision's registry rather than to MODELS."""
    return name.startswith(TORCHVISION_PREFIX)


def check_model_name(name: str) -> None:
    """A registered architecture or a `torchvision:` name (whose constructor is checked when built)."""
    if is_torchvision(name):
        if not name[len(TORCHVISION_PREFIX):]:
            raise MwtError(f"'{name}' names no model; write e.g. {TORCHVISION_PREFIX}mobilenet_v2")
        return
    if is_user_code(name):
        if not name[len(CODE_PREFIX):].isidentifier():
            raise MwtError(f"'{name}' names no function; train with --model <file.py>:<function>")
        return
    architecture(name)


def architecture(name: str) -> Architecture:
    """A registered architecture by name; unknown names get an error listing the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise MwtError(f"unknown model '{name}'; choose one of: {', '.join(sorted(MODELS))}") from None


def smallest_input(name: str) -> int:
    """The smallest image side (after the dataset's padding) the architecture can take: a VGG
    halves its input at every max-pool, so it needs 2**pools pixels; ResNet's strided convs pad.
    A torchvision network is checked by running it instead (mwt.models.torchvision_models.check_network)."""
    if is_constructed(name):
        return 1
    arch = architecture(name)
    return 2 ** sum(1 for v in arch.layout if v == "M") if arch.family == "vgg" else 1


def check_input_size(name: str, size: tuple[int, int], pad: int = 0) -> None:
    """Refuse images too small for the architecture, naming the smallest size it takes."""
    need = smallest_input(name)
    height, width = (s + 2 * pad for s in size)
    if min(height, width) < need:
        pools = need.bit_length() - 1
        raise MwtError(f"{name} needs images of at least {need}x{need} pixels (it halves them {pools} times); these are "
                       f"{height}x{width}: resize them to {need} or more, or choose resnet18", options=("image_size",))


def check_width(width: float) -> None:
    """The channel-width multiplier must be in (0, MAX_WIDTH]."""
    if not 0 < width <= MAX_WIDTH:
        raise MwtError(f"width must be in (0, {MAX_WIDTH:g}], got {width}")


@dataclass(frozen=True)
class Recipe:
    """Loss weights and gating of a named modular-training recipe."""

    alpha: float  # cohesion
    beta: float  # coupling
    gamma: float = 0.0  # expected FLOPs through the open gates
    gate_first: bool = False  # gate the first conv too
    reuse: float = 0.0  # share of each batch trained through static sub-task gates (mwt.subtask_route)
    delta: float = 0.0  # decisiveness: each class's gates all open or all closed (mwt.losses.decisiveness)
    summary: str = ""


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(0.5, 1.5, summary="MwT as published: cohesion 0.5, coupling 1.5, first conv plain"),
    "cost": Recipe(0.5, 3.0, 2.0, gate_first=True,
                   summary="cost-aware: coupling 3, plus 2 x the expected FLOPs fraction, first conv gated"),
    "reuse": Recipe(0.5, 1.0, 4.0, gate_first=True, reuse=0.5, delta=1.0,
                    summary="cost-aware (FLOPs weight 4, coupling 1), plus half of each batch trained through the static gates of sampled "
                    "2- and 3-class sub-tasks (as their exported gate-free modules run) and a decisiveness loss "
                    "(each class's gates all open or all closed)"),
}


def recipe(name: str) -> Recipe:
    """A registered recipe by name."""
    try:
        return RECIPES[name]
    except KeyError:
        raise MwtError(f"unknown recipe '{name}'; choose one of: {', '.join(RECIPES)}") from None
