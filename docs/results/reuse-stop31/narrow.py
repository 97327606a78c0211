"""A plain (ungated) quarter-width VGG16 whose convs have given widths, trained as the standard model is.

What it answers: can a network as narrow as a modular model's whole model (the union of all classes'
kernels, per layer) reach the standard model's accuracy at all? If it can, the modular training
holds the whole model back; if it cannot, the widths do.

Usage: python narrow.py NAME W1,W2,...,W13 [EPOCHS [TEACHER [WEIGHT]]] (widths of the 13 convs, in
order; seed 0, the standard model's settings: SGD Nesterov lr 0.05 cosine, batch 128, weight decay
5e-4, crop-flip augmentation; with TEACHER, distilled from it at temperature 4 and WEIGHT, default 1,
as `mwt train --teacher` does). Writes NAME.jsonl (one line per epoch) in the working directory.
"""

import sys
from pathlib import Path

from mwt.data import load_dataset
from mwt.models.spec import scaled
from mwt.registry import MODELS, VGG16_LAYOUT, Architecture
from mwt.train import TrainConfig, train

name, widths = sys.argv[1], [int(w) for w in sys.argv[2].split(",")]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 30
convs = [i for i, item in enumerate(VGG16_LAYOUT) if item != "M"]
assert len(widths) == len(convs) == 13
layout = list(VGG16_LAYOUT)
for i, w in zip(convs, widths):
    layout[i] = 4 * w  # the run's width 0.25 scales them back; it also keeps the classifier at 128 wide
MODELS[name] = Architecture("vgg", tuple(layout), summary="narrow VGG16 (research)")

# Conv FLOPs (multiply-adds) against the plain quarter-width VGG16, 32x32 input (28 padded by 2).
def conv_flops(ws: list[int]) -> int:
    total, size, cin, k = 0, 32, 1, 0
    for item in VGG16_LAYOUT:
        if item == "M":
            size //= 2
            continue
        total += size * size * cin * ws[k] * 9
        cin, k = ws[k], k + 1
    return total

plain = [scaled(int(item), 0.25) for item in VGG16_LAYOUT if item != "M"]
print(f"{name}: conv FLOPs {conv_flops(widths) / conv_flops(plain):.2%} of the plain quarter-width VGG16", flush=True)
teacher = sys.argv[4] if len(sys.argv) > 4 else None
weight = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
config = TrainConfig(model=name, width=0.25, modular=False, epochs=epochs, seed=0, teacher=teacher, distill=weight)
data = load_dataset(config.source(), show_progress=False)
ckpt = train(config, data.train, data.test, log_path=Path(f"{name}.jsonl"), show_progress=False, info=data.info,
             source=data.source)
print(f"{name}: test accuracy {ckpt.training['test_acc']:.2%}", flush=True)
