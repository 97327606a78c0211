"""Where a reuse-recipe training step's CPU time goes (stop 61): one short epoch of Z's command on a
slice of Fashion-MNIST under torch.profiler, top operators by self CPU time.

    python docs/results/reuse-stop61/profile_step.py TEACHER.pt [IMAGES]
"""
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from mwt.data import load_dataset
from mwt.train import TrainConfig, train

teacher, images = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1280
config = TrainConfig.from_recipe(
    "reuse", width=0.25, epochs=1, seed=0, cost_block=16, teacher=teacher, flops_target=0.14, gamma_warmup=0,
    beta=3, budget_by_loss=0.5, similarity=300, lr_warmup=2, delta=2, budget_adapt=0.003, train_limit=images,
    test_limit=256)
data = load_dataset("fashion-mnist", show_progress=False)
with profile(activities=[ProfilerActivity.CPU]) as prof:
    train(config, data.train, data.test, show_progress=False)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
