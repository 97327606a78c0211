"""Stop 61: one epoch of Z's command on a slice of Fashion-MNIST, two ways alternated A B A B:

- `teacher`: the teacher's answers kept once (the default without augmentation) against the teacher run on
  every batch (teacher-ab-*.txt);
- `layout`: channels-first against channels-last on the CPU (`--channels-last`), answers kept in both
  (layout-ab-quiet.txt).

    python docs/results/reuse-stop61/ab.py teacher|layout TEACHER.pt [IMAGES] [PAIRS]
"""
import sys
import time
from dataclasses import replace

import mwt.train as training
from mwt.data import load_dataset
from mwt.train import TrainConfig, train

what, teacher = sys.argv[1], sys.argv[2]
images = int(sys.argv[3]) if len(sys.argv) > 3 else 6400
pairs = int(sys.argv[4]) if len(sys.argv) > 4 else 2
config = TrainConfig.from_recipe(
    "reuse", width=0.25, epochs=1, seed=0, cost_block=16, teacher=teacher, flops_target=0.14, gamma_warmup=5,
    beta=3, budget_by_loss=0.5, similarity=300, lr_warmup=2, delta=2, budget_adapt=0.003, train_limit=images,
    test_limit=512)
data = load_dataset("fashion-mnist", show_progress=False)
fits = training.fits
ways = {"teacher": (("kept", config), ("per batch", config)),
        "layout": (("channels first", replace(config, channels_last=False)),
                   ("channels last", replace(config, channels_last=True)))}[what]
for _ in range(pairs):
    for label, way in ways:
        training.fits = (lambda *_: False) if label == "per batch" else fits
        t = time.perf_counter()
        h = train(way, data.train, data.test, show_progress=False).training["history"][-1]
        print(f"{label}: {time.perf_counter() - t:.2f} s in all, epoch {h['seconds']:.2f} s, loss {h['loss']:.5f}, "
              f"distill {h['distill']:.5f}, similarity {h['similarity']:.6f}, test {h['test_acc']:.4f}", flush=True)
