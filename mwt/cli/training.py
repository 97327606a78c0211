"""`mwt train`, `mwt modularize` and `mwt eval`: the training side's commands."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from mwt.cli.options import (ROUNDING_DEFAULT, Align, Classes, DataDir, Download, PadLimit, Quiet, Rounding, Threshold,
                             choices, number)
from mwt.collapse import DEFAULT_DROP
from mwt.core.atomic import check_writable
from mwt.defaults import DEFAULT_ALIGN, DEFAULT_THRESHOLD, MAX_SEED
from mwt.core.errors import MwtError, MwtWarning
from mwt.registry import (
    DATASETS, GATE_LOSS_SCOPES, MAX_WIDTH, MODELS, RECIPES, STEMS, TORCHVISION_PREFIX, is_code_reference,
    is_torchvision,
)

app = typer.Typer()

Stem = choices(STEMS)


def model_name(value: str) -> str:
    """A typer callback: a registered architecture or a `torchvision:<name>` (checked against
    torchvision's registry when the run is configured)."""
    if value in MODELS or (is_torchvision(value) and value != TORCHVISION_PREFIX) or is_code_reference(value):
        return value
    raise typer.BadParameter(f"'{value}' is not one of {', '.join(repr(n) for n in MODELS)}, "
                             f"or {TORCHVISION_PREFIX}<name> (e.g. {TORCHVISION_PREFIX}mobilenet_v2), "
                             "or <file.py>:<function>")
RecipeName = choices(RECIPES)
Amp = choices(["off", "bf16", "fp16"])
Storage = choices(["auto", "memory", "stream"])
GateLosses = choices(GATE_LOSS_SCOPES)


@app.command()
def train(
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Where to write the checkpoint (default: model.pt; with --resume, the resumed file).")] = None,
    model: Annotated[str, typer.Option(
        help=f"Architecture: one of {', '.join(MODELS)}, or any classification CNN in torchvision's model registry "
        f"as {TORCHVISION_PREFIX}<name> (e.g. {TORCHVISION_PREFIX}mobilenet_v2, {TORCHVISION_PREFIX}resnet50, "
        f"{TORCHVISION_PREFIX}efficientnet_b0), built from torchvision's constructor without weights, or your own "
        "network as <file.py>:<function> (called as function(num_classes=..., in_channels=...), returning a "
        "torch.nn.Module; later commands then need 'mwt --model-code <file.py>:<function> ...'). Gates are "
        "inserted into every conv-BN pair.", callback=model_name)] = "vgg16",
    stem: Annotated[Stem, typer.Option(  # type: ignore[valid-type]
        help=f"{TORCHVISION_PREFIX} models only: 'cifar' adapts the stem to 32x32 inputs (a 3x3 stride-1 first "
        "conv and no first max-pool); 'default' keeps torchvision's.")] = Stem("default"),
    dataset: Annotated[str, typer.Option(
        help=f"A built-in dataset ({', '.join(DATASETS)}), or a folder of images with one subfolder per class "
        "(and optionally train/ and test/ or val/ splits).")] = "fashion-mnist",
    width: Annotated[float, typer.Option(
        help="Channel-width multiplier (0.25 trains a quarter-width net).", callback=number(0, MAX_WIDTH, low_open=True),
    )] = 1.0,
    epochs: Annotated[int, typer.Option(help="Training epochs (the paper uses 200).", min=1, max=100_000)] = 200,
    standard: Annotated[bool, typer.Option("--standard", help="Train the standard baseline (no gates, no MwT losses).")] = False,
    recipe: Annotated[RecipeName, typer.Option(  # type: ignore[valid-type]
        help="Loss weights: " + "; ".join(f"{k}: {r.summary}" for k, r in RECIPES.items()) + ".")] = RecipeName("paper"),
    alpha: Annotated[Optional[float], typer.Option(help="Weight of the cohesion loss (default: the recipe's).",
                                                   callback=number(0, 1000))] = None,
    beta: Annotated[Optional[float], typer.Option(help="Weight of the coupling loss (default: the recipe's).",
                                                  callback=number(0, 1000))] = None,
    gamma: Annotated[Optional[float], typer.Option(help="Weight of the expected-FLOPs loss (default: the recipe's).",
                                                   callback=number(0, 1000))] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size (under torchrun: the global batch, split evenly).",
                                            min=1, max=1 << 16)] = 128,
    lr: Annotated[float, typer.Option(help="Initial SGD learning rate (cosine schedule).",
                                      callback=number(0, 100, low_open=True))] = 0.05,
    lr_warmup: Annotated[int, typer.Option(
        help="Ramp each step's learning rate linearly from near 0 up to the cosine schedule's over this many "
        "epochs, so the first steps do not set the gates before the features form (0: off). On the reuse recipe "
        "at a seed whose first epoch went badly, 2 lifted epoch 1 from 51% to 77% of the training images, and the "
        "run met every goal of issue 16 at that seed (docs/results.md, stop 53); at two other seeds it moved the whole "
        "model 0.21 pp nearer its standard model at one and 0.21 pp further at the other (stop 54).", min=0,
        max=100000)] = 0,
    weight_decay: Annotated[float, typer.Option(
        help="SGD weight decay (L2) on every parameter, as in MwT's code. On the reuse recipe 2.5e-4 and 1e-3 "
        "left the whole model no nearer the standard one than 5e-4 (docs/results.md, stop 48).",
        callback=number(0, 1, high_open=True))] = 5e-4,
    reuse: Annotated[Optional[float], typer.Option(
        help="Share of each batch trained through the static gates of sampled sub-tasks, as their gate-free "
        "modules will run (default: the recipe's; 0.5 in the reuse recipe).",
        callback=number(0, 1, high_open=True))] = None,
    delta: Annotated[Optional[float], typer.Option(
        help="Weight of the decisiveness loss: each class's gates all open or all closed (default: the recipe's).",
        callback=number(0, 1000))] = None,
    beta_warmup: Annotated[int, typer.Option(
        help="Ramp beta up from 0 over this many epochs (0: off). On the reuse recipe at a seed whose first epoch "
        "went badly, 5 lifted epoch 1 from 51% to 65% of the training images and the whole model by 1.1 pp, but "
        "the classes parted less and the pairs' modules grew from 9.1% to 11.0% of the FLOPs (docs/results.md, "
        "stop 53).", min=0)] = 0,
    teacher: Annotated[Optional[Path], typer.Option(
        help="Distill this trained checkpoint of the same classes (e.g. the standard model: mwt train --standard) "
        "into the run: its answers at --temperature join the loss, over each routed row's sub-task classes.")] = None,
    distill: Annotated[float, typer.Option(help="Weight of the teacher's term (with --teacher).",
                                           callback=number(0, 1000, low_open=True))] = 1.0,
    temperature: Annotated[float, typer.Option(help="Softens the student's and the teacher's answers (with --teacher).",
                                               callback=number(0, 100, low_open=True))] = 4.0,
    similarity: Annotated[float, typer.Option(
        help="Weight of a second teacher's term (with --teacher): similarity-preserving distillation (Tung & Mori "
        "2019), which holds the run's penultimate features to the teacher's sense of which images in a batch are "
        "alike, sample against sample, so gated and full-width features compare (0: off). On the reuse recipe 300 "
        "and 1000 raised the whole model 0.2 pp but widened the modules; with a budget that binds (--flops-target "
        "0.17) 300 kept them small and met issue 16's goals at one seed (timed warm) but collapsed at another; the "
        "paper's 3000 stalled the first epochs (docs/results.md, stops 49-50).",
        callback=number(0, 1e6))] = 0.0,
    gamma_warmup: Annotated[int, typer.Option(
        help="Ramp the FLOPs weight gamma up from 0 over this many epochs, so features form before gates close "
        "(0: off).", min=0)] = 0,
    cost_block: Annotated[int, typer.Option(
        help="Count each conv's channels in blocks of this many in the FLOPs term, as onnxruntime's CPU convs "
        "compute them (8 with AVX2, 16 with AVX-512): gates then close where that makes the deployed module "
        "faster, not only smaller (1: plain FLOPs).", min=1, max=1024)] = 1,
    free_channels: Annotated[int, typer.Option(
        help="Leave each gated layer's first N open channels out of the FLOPs term, so it stops narrowing "
        "the early, high-resolution layers below N channels (0: off).", min=0, max=1024)] = 0,
    flops_target: Annotated[float, typer.Option(
        help="Make the FLOPs term a budget: a sample pays gamma per FLOP only above this fraction of the "
        "network's FLOPs (as the term counts them, with --cost-block), so training uses the budget instead "
        "of shrinking every module as far as it can (0: off). Above the target the pull is gamma's whatever the "
        "target: a lower target binds only if the run gets down to it; --gamma pulls harder.",
        callback=number(0, 1, high_open=True))] = 0.0,
    budget_adapt: Annotated[float, typer.Option(
        help="Make --flops-target bind: the FLOPs weight grows by exp(RATE x the samples' relative excess over "
        "their target) each step while they stay above it, and shrinks back below it (never under gamma, at most "
        "64x; from the end of --gamma-warmup). At 0.01 it grows about tenfold in an epoch of 60,000 images (469 steps) spent 50% over (0: off, the "
        "pull is gamma's).",
        callback=number(0, 1))] = 0.0,
    budget_relax: Annotated[float, typer.Option(
        help="With --budget-adapt: under the target the pull eases this many times faster than it grows above it "
        "(1: the same rate both ways). At 5 the samples came straight back to the budget's edge and the pull stayed "
        "up, with no gain in accuracy (stop 66).",
        callback=number(1, 100))] = 1.0,
    gate_leak: Annotated[float, typer.Option(
        help="Let closed gates open again. A gate at 0 gets no gradient from any loss (the ReLU in its generator "
        "and the one after it), so a kernel the budget closed stays closed; with this, a closed gate passes this "
        "share of a gradient that would open it (VGG's gated convs; 0: off, MwT's gates). 0.5 from epoch 1 "
        "fought the budget and collapsed a short run; 0.1 from epoch 8 (--gate-leak-from) met issue 16's goals at "
        "one seed (docs/results.md, stop 62).", callback=number(0, 1))] = 0.0,
    gate_leak_from: Annotated[int, typer.Option(
        help="The epoch (from 1) at which --gate-leak starts: a later one lets the FLOPs budget bind first, so "
        "the leak reopens the kernels the budget's pull closed past its target instead of fighting the pull.",
        min=1)] = 1,
    gate_leak_warmup: Annotated[int, typer.Option(
        help="Epochs over which --gate-leak ramps linearly from 0, from --gate-leak-from on (0: full strength at "
        "once): the closed kernels reopen a few at a time, so the budget's pull does not answer them all in one "
        "epoch (at full strength from epoch 8, seed 1's training accuracy fell 7 pp at epoch 9, stop 63; ramped "
        "in over 4 epochs it never fell and met every goal of issue 16 at that seed, stop 64).",
        min=0)] = 0,
    budget_by_loss: Annotated[float, typer.Option(
        help="Give each class its own FLOPs budget (with --flops-target): the target times (the class's running "
        "cross-entropy / the mean over classes) to this power, within 0.5-2x, so the classes the network finds "
        "hard may keep more kernels and the easy ones fewer (0: every class the same target).",
        callback=number(0, 4))] = 0.0,
    coupling_by_loss: Annotated[float, typer.Option(
        help="Weigh each pair of classes in the coupling loss by its classes' running cross-entropy relative "
        "to the mean, to minus this power (within 0.5-2x): the classes the network finds hard are parted "
        "less, the easy ones more. Measured on the reuse recipe it cost accuracy and did not enlarge the hard "
        "classes' modules (docs/results.md, stop 47; 0: every pair the same, as in MwT).",
        callback=number(0, 4))] = 0.0,
    coupling_by_cost: Annotated[bool, typer.Option(
        "--coupling-by-cost", help="Weigh each layer's coupling loss by what one of its kernels costs (the "
        "full-resolution first convs most), so classes part in the layers that make a module expensive "
        "instead of in the cheap last ones (default: every layer the same, as in MwT).")] = False,
    gate_losses: Annotated[GateLosses, typer.Option(  # type: ignore[valid-type]
        help="What the gate losses (cohesion, coupling, FLOPs, decisiveness) train: 'network', as in MwT "
        "(their gradients reach every layer through each mask generator's input), or 'generators' only, so "
        "the network's weights learn from the task's losses alone (cross-entropy, the sub-task route, the "
        "teacher).")] = GateLosses("network"),
    settle_epochs: Annotated[int, typer.Option(
        help="Train the last N epochs under the gates the run has: the gate losses (cohesion, coupling, FLOPs, "
        "decisiveness) off and the mask generators frozen, so the network's weights fit the task (cross-entropy, "
        "the sub-task route, the teacher) with the kernels its modules will keep (0: off).", min=0,
        max=100_000)] = 0,
    collapse_drop: Annotated[float, typer.Option(
        help="Collapse guard, where a FLOPs term is in play: if training accuracy falls by more than this fraction "
        "from one epoch to the next (the classes' gates collapsing onto the same few kernels), rewind the run two "
        "epochs and halve the learning rate, at most 3 times; the epoch log records each rewind (0: off). Healthy "
        "runs so far fell at most 0.048, collapsed ones 0.11-0.17. A loss that is no longer finite is rewound the "
        "same way (with the guard off, it ends the run).", min=0.0, max=0.99)] = DEFAULT_DROP,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same run on CPU.", min=0, max=MAX_SEED)] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, or a torch device name such as cuda:1.")] = "auto",
    amp: Annotated[Amp, typer.Option(help="Mixed precision on CUDA: bf16, or fp16 with a gradient scaler.")] = Amp("off"),  # type: ignore[valid-type]
    channels_last: Annotated[Optional[bool], typer.Option(
        "--channels-last/--no-channels-last", help="Channels-last memory layout (default: on CUDA).")] = None,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    save_every: Annotated[Optional[int], typer.Option(
        help="Write a resumable checkpoint to OUT every N epochs (0: only when stopped by SIGINT/SIGTERM). "
        "Default 0; with --resume, as often as the resumed run saved.", min=0)] = None,
    resume: Annotated[Optional[Path], typer.Option(
        help="Continue the run saved in this resumable checkpoint, as it was configured.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Train on only the first N training images.", min=1)] = None,
    init_from: Annotated[Optional[Path], typer.Option(
        help="Start from these weights: a state dict saved with torch.save(model.state_dict()) (read weights-only), "
        "e.g. of the torchvision network named by --model. Tensors whose shapes differ (the classifier, when the "
        "class count differs) keep fresh values; the mask generators always start fresh.")] = None,
    image_size: Annotated[Optional[int], typer.Option(
        help="Image folders: resize to this square size (default: the images' common size, else 32).",
        min=1, max=4096)] = None,
    channels: Annotated[Optional[int], typer.Option(
        help="Image folders: 1 (grayscale) or 3 (RGB) (default: detected).", min=1, max=3)] = None,
    test_fraction: Annotated[float, typer.Option(
        help="Image folders without train/ and test/: share of each class held out for testing (seeded).",
        callback=number(0, 1, low_open=True, high_open=True))] = 0.2,
    storage: Annotated[Storage, typer.Option(  # type: ignore[valid-type]
        help="Image folders: decode once into memory, stream batches from the files, or auto (stream past "
        "the memory budget).")] = Storage("auto"),
    strict: Annotated[bool, typer.Option("--strict", help="Image folders: refuse files that cannot be decoded "
                                         "(default: skip them with a warning).")] = False,
    log: Annotated[Optional[Path], typer.Option(
        help="JSON-lines log of every epoch, appended to (default: OUT with .jsonl).")] = None,
    data_dir: DataDir = None,
    download: Download = False,
    quiet: Quiet = False,
) -> None:
    """Train a modular CNN (or the standard baseline) and save it as a checkpoint; torchrun runs it on several processes."""
    from mwt.checkpoint import load_checkpoint
    from mwt.data import load_dataset
    from mwt.distributed import Dist, join, leave, world_from_env
    from mwt.train import resolve_device, save_or_rescue
    from mwt.train import train as run_training
    from mwt.train_config import TrainConfig

    if dataset.lower() in DATASETS:  # a bare built-in name means the built-in dataset, folder or not
        if Path(dataset).is_dir():
            warnings.warn(MwtWarning(f"'{dataset}' names the built-in dataset; to train on the folder of that name "
                                     f"here, give it as a path: --dataset ./{dataset}"), stacklevel=1)
    elif Path(dataset).is_dir():
        dataset = str(Path(dataset).resolve())
    if is_code_reference(model):  # the user's own network: imported because this command line names it
        from mwt.models.user_code import load_user_code, provide

        code = load_user_code(model)
        provide(code)
        model = code.arch
    given = dict(model=model, stem=stem.value, init_from=str(init_from) if init_from else None, dataset=dataset, width=width, modular=not standard, epochs=epochs,
                 batch_size=batch_size, lr=lr, lr_warmup=lr_warmup, weight_decay=weight_decay, beta_warmup=beta_warmup, gamma_warmup=gamma_warmup, cost_block=cost_block,
                 free_channels=free_channels, flops_target=flops_target, budget_adapt=budget_adapt, budget_relax=budget_relax, gate_leak=gate_leak, gate_leak_from=gate_leak_from,
                 gate_leak_warmup=gate_leak_warmup, budget_by_loss=budget_by_loss,
                 coupling_by_loss=coupling_by_loss, coupling_by_cost=coupling_by_cost,
                 gate_losses=gate_losses.value, settle_epochs=settle_epochs, collapse_drop=collapse_drop,
                 teacher=str(teacher.resolve()) if teacher else None, distill=distill, temperature=temperature,
                 similarity=similarity,
                 seed=seed, train_limit=limit, recipe=recipe.value,
                 image_size=image_size, channels=channels, test_fraction=test_fraction, storage=storage.value,
                 strict=strict)
    runtime = dict(device=device, amp=amp.value, channels_last=channels_last, compile=compile_model)
    previous = None
    if resume is not None:
        previous = load_checkpoint(resume)
        if previous.resume is None:
            raise MwtError(f"{resume} is a finished run (or not a resumable checkpoint); there is nothing to resume")
        config = TrainConfig.from_dict(previous.training.get("config", {})).resumed_with({**given, **runtime}, resume)
    else:
        config = TrainConfig.from_recipe(recipe.value, alpha=alpha, beta=beta, gamma=gamma, reuse=reuse, delta=delta,
                                         **runtime, **{k: v for k, v in given.items() if k != "recipe"})
    out = out or resume or Path("model.pt")
    rank, world, local = world_from_env()
    config.validate(world)
    if config.flops_target and not config.gamma_warmup and previous is None and rank == 0:
        # Measured (docs/results.md, stop 32): at the full weight from the first step the FLOPs
        # fall below the target within an epoch, and closed gates never open again.
        warnings.warn(MwtWarning(f"--flops-target {config.flops_target:g} without a ramp: the run will likely "
                                 "shrink below the target in its first epoch and stay there; add --gamma-warmup 5 "
                                 "to approach it"), stacklevel=1)
    log = log or out.with_suffix(".jsonl")
    if rank == 0:
        for path in (out, log):
            check_writable(path)
    dist = join(resolve_device(device, Dist(rank, world, local)))
    try:
        data = load_dataset(previous.source if previous else config.source(), data_dir, download,
                            show_progress=not quiet and dist.main)
        if previous and list(data.info.classes) != previous.classes:
            raise MwtError(f"the dataset now holds classes {list(data.info.classes)}, not the run's {previous.classes}")
        train_data, test_data = data.train, data.test
        if dist.main:
            kind = "standard" if not config.modular else f"modular ({config.recipe} recipe)"
            where = f" on {dist.world} processes" if dist.active else ""
            start = f", resumed after epoch {len(previous.training.get('history', []))}" if previous else ""
            shape = "x".join(map(str, (data.info.channels, *data.info.size)))
            print(f"training a {kind} {config.model} (width {config.width}) on {data.info.name}{where}: "
                  f"{len(train_data.subset(config.train_limit))} images of {shape}, {len(data.info.classes)} classes, "
                  f"{config.epochs} epochs{start}", flush=True)
        ckpt = run_training(config, train_data, test_data, log_path=log, show_progress=not quiet, save_path=out,
                            save_every=save_every, resume=previous, dist=dist, info=data.info, source=data.source)
        if dist.main:
            save_or_rescue(ckpt, out)  # a full disk does not throw the finished run away
            print(f"test accuracy {100 * ckpt.training['test_acc']:.2f}%; wrote {out} (epoch log {log})")
    finally:
        leave(dist)


@app.command()
def modularize(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint from 'mwt train'.")],
    threshold: Threshold = DEFAULT_THRESHOLD,
    limit: Annotated[Optional[int], typer.Option(help="Use only the first N training images.", min=1)] = None,
    data_dir: DataDir = None,
    download: Download = False,
    quiet: Quiet = False,
) -> None:
    """Record each class's kernel frequencies in the checkpoint; report module KRR, FLOPs kept, cohesion, coupling."""
    from mwt.checkpoint import load_checkpoint, save_checkpoint
    from mwt.data import classes_missing, load_split
    from mwt.distributed import Dist, join, leave, world_from_env
    from mwt.modularize import kernel_frequency
    from mwt.report import module_report
    from mwt.train import resolve_device

    ckpt = load_checkpoint(checkpoint)
    if not ckpt.spec.modular:
        raise MwtError(f"{checkpoint} is a standard model (trained with --standard); it has no gates to modularize")
    rank, world, local = world_from_env()
    if rank == 0:
        check_writable(checkpoint)
    device = resolve_device("auto", Dist(rank, world, local))
    dist = join(device)
    try:
        train_data = load_split(ckpt.source, "train", data_dir, download, classes=ckpt.classes).subset(limit)
        missing = classes_missing(train_data, ckpt.classes)
        if missing:  # a module read off no images of its class is its most active kernels, nothing more
            raise MwtError(f"no training image of {', '.join(missing)} in the {len(train_data)} used: a module needs "
                           "its class's images (--limit takes the first images; an image folder lists them class by "
                           "class)", options=("limit",))
        ckpt.modularization = kernel_frequency(ckpt.build(), train_data, len(ckpt.classes), show_progress=not quiet,
                                               device=device, dist=dist)
    finally:
        leave(dist)
    if not dist.main:
        return
    save_checkpoint(ckpt, checkpoint)
    test_data = load_split(ckpt.source, "test", data_dir, download, classes=ckpt.classes)
    print(module_report(ckpt, test_data, threshold).table())


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A modularized checkpoint.")],
    classes: Annotated[Optional[str], typer.Option(
        help="One sub-task's classes by name or index: 'sneaker,bag'.")] = None,
    all_pairs: Annotated[bool, typer.Option(
        "--all-pairs", help="Score every class pair's modules: the data-free gate-free module, the dynamic module "
        "and the full model restricted to the pair (the reuse matrix).")] = False,
    triples: Annotated[int, typer.Option(
        help="Also score this many seeded random 3-class sub-tasks (with --all-pairs, or alone).",
        min=0, max=10_000)] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the random triples.", min=0, max=MAX_SEED)] = 0,
    threshold: Threshold = DEFAULT_THRESHOLD,
    align: Align = DEFAULT_ALIGN,
    pad_limit: PadLimit = None,
    rounding: Rounding = ROUNDING_DEFAULT,
    data_dir: DataDir = None,
    download: Download = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    quiet: Quiet = False,
) -> None:
    """Sub-task accuracy of the full model and its modules (simulated in PyTorch), KRR, FLOPs kept.

    With --classes, one sub-task's union module. With --all-pairs and/or --triples, the reuse
    matrix: every pair (and random triples), each scored as the full model restricted to its
    classes, its dynamic module and its data-free gate-free module (the kernels mwt-export keeps,
    at constant gates, no generators); it prints min/median/mean/max over the sub-tasks, and each
    sub-task's FLOPs as a share of the module of all classes (near 100%: the sub-tasks share one
    pruned network rather than modules of their own).
    """
    from dataclasses import asdict

    from mwt.checkpoint import load_checkpoint
    from mwt.cost import cost_model
    from mwt.data import load_split
    from mwt.report import subtask_report
    from mwt.reuse_matrix import all_pairs as every_pair
    from mwt.reuse_matrix import random_subtasks, score_subtasks, summary, summary_table
    from mwt.selection import ModuleSelection

    matrix = all_pairs or triples > 0
    if matrix == (classes is not None):
        raise MwtError("give either --classes (one sub-task) or --all-pairs/--triples (the reuse matrix)")
    if classes is not None:  # the union as MwT reports it: these shape only the matrix's exported modules
        given = [name for name, changed in (("--align", align != DEFAULT_ALIGN), ("--pad-limit", pad_limit is not None),
                                            ("--rounding", rounding is not ROUNDING_DEFAULT)) if changed]
        if given:
            raise MwtError(f"{given[0]} shapes the modules of --all-pairs/--triples; --classes reports the union "
                           "of the classes' kernels as MwT does, unaligned", options=(given[0][2:].replace("-", "_"),))
    ckpt = load_checkpoint(checkpoint)
    ckpt.require_modularization(checkpoint)
    if triples > 0 and len(ckpt.classes) < 3:
        raise MwtError(f"--triples needs a model of at least 3 classes; {checkpoint} has {len(ckpt.classes)}",
                       options=("triples",))
    # The union of the classes' modules, as MwT reports it: no alignment.
    selection = ModuleSelection.of(ckpt, classes, threshold=threshold, align=1, path=checkpoint) if not matrix else None
    test_data = load_split(ckpt.source, "test", data_dir, download, classes=ckpt.classes)
    if selection is not None:
        report = subtask_report(ckpt, selection, test_data)
        print(json.dumps(asdict(report), indent=2) if as_json else report.table())
        return
    k = len(ckpt.classes)
    groups = {"pairs": every_pair(k) if all_pairs else [], "triples": random_subtasks(k, 3, triples, seed)}
    picked = {"threshold": threshold, "align": align, "pad_limit": pad_limit, "rounding": str(rounding.value)}
    cost = cost_model(ckpt.build(), ckpt.spec.input_shape)
    # The module of every class, selected as the sub-tasks' are: a sub-task's share of it tells class
    # modules (well under it) from one pruned network that every class shares (all of it).
    every = ModuleSelection.of(ckpt, list(range(k)), cost=cost, **picked).flops_kept(cost)
    scores = {name: score_subtasks(ckpt, subtasks, test_data, show_progress=not quiet and not as_json, cost=cost,
                                   **picked)
              for name, subtasks in groups.items() if subtasks}
    if as_json:
        print(json.dumps({"all_classes_flops_kept": every} | {
            name: {"subtasks": [s.to_dict() for s in found],
                   "summary": {key: asdict(v) for key, v in summary(found, every).items()}}
            for name, found in scores.items()}, indent=2))
        return
    for name, found in scores.items():
        print(summary_table(found, name, every))
        print()
    print(f"accuracy on each sub-task's test images, argmax over its classes; gate-free = the module "
          f"mwt-export writes with --gates folded, from the modularization alone (no images); drops in "
          f"points against the full model restricted to the sub-task; the module of all {k} classes keeps "
          f"{100 * every:.2f}% of the FLOPs")


@app.command()
def finetune(
    checkpoint: Annotated[Path, typer.Argument(help="A modularized checkpoint.")],
    classes: Classes,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write the module (default: <classes>.pt).")] = None,
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs.", min=1, max=100_000)] = 10,
    lr: Annotated[float, typer.Option(help="Initial SGD learning rate (cosine schedule).",
                                      callback=number(0, 100, low_open=True))] = 0.01,
    batch_size: Annotated[int, typer.Option(help="Batch size.", min=1, max=1 << 16)] = 128,
    seed: Annotated[int, typer.Option(help="Random seed.", min=0, max=MAX_SEED)] = 0,
    threshold: Threshold = DEFAULT_THRESHOLD,
    align: Align = DEFAULT_ALIGN,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, or a torch device name.")] = "auto",
    data_dir: DataDir = None,
    download: Download = False,
    quiet: Quiet = False,
) -> None:
    """Cut a module out as a gate-free network (gates folded into its batch norms) and fine-tune it on its classes."""
    from mwt.checkpoint import file_sha256, load_checkpoint, save_checkpoint
    from mwt.core.names import safe_stem
    from mwt.cost import cost_model
    from mwt.data import load_split
    from mwt.finetune import FinetuneConfig
    from mwt.finetune import finetune as run_finetune
    from mwt.selection import ModuleSelection

    config = FinetuneConfig(epochs, lr, batch_size, seed, device)
    config.validate()
    ckpt = load_checkpoint(checkpoint)
    cost = cost_model(ckpt.build(), ckpt.spec.input_shape)  # probed once: for the selection and the compact network
    selection = ModuleSelection.of(ckpt, classes, threshold=threshold, align=align, cost=cost,
                                   path=checkpoint)
    out = out or Path(safe_stem(list(selection.names)) + ".pt")  # stays in this folder
    check_writable(out)
    train_data = load_split(ckpt.source, "train", data_dir, download, classes=ckpt.classes)
    test_data = load_split(ckpt.source, "test", data_dir, download, classes=ckpt.classes)
    if not quiet:
        print(f"fine-tuning the module of {', '.join(selection.names)} for {epochs} epochs", flush=True)
    tuned, report = run_finetune(ckpt, selection, config, train_data, test_data, cost=cost,
                                 source_sha256=file_sha256(checkpoint), show_progress=not quiet)
    save_checkpoint(tuned, out)
    print(report.table())
    print(f"wrote {out} (export it with: mwt-export --classes {','.join(tuned.classes)} {out})")
