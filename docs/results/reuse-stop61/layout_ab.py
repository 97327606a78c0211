"""Stop 61: one epoch of Z's command on a slice of Fashion-MNIST on the CPU, channels-first against
channels-last (`--channels-last`), alternated A B A B; the teacher's answers kept in both.

    python docs/results/reuse-stop61/layout_ab.py TEACHER.pt [IMAGES] [PAIRS]
"""
import sys
import time
from dataclasses import replace

from mwt.data import load_dataset
from mwt.train import TrainConfig, train

teacher = sys.argv[1]
images = int(sys.argv[2]) if len(sys.argv) > 2 else 6400
pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
config = TrainConfig.from_recipe(
    "reuse", width=0.25, epochs=1, seed=0, cost_block=16, teacher=teacher, flops_target=0.14, gamma_warmup=5,
    beta=3, budget_by_loss=0.5, similarity=300, lr_warmup=2, delta=2, budget_adapt=0.003, train_limit=images,
    test_limit=512)
data = load_dataset("fashion-mnist", show_progress=False)
for _ in range(pairs):
    for last in (False, True):
        t = time.perf_counter()
        ck = train(replace(config, channels_last=last), data.train, data.test, show_progress=False)
        h = ck.training["history"][-1]
        print(f"channels {'last' if last else 'first'}: {time.perf_counter() - t:.2f} s in all, epoch {h['seconds']:.2f} s, "
              f"loss {h['loss']:.5f}, test {h['test_acc']:.4f}", flush=True)
