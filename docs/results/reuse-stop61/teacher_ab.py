"""Stop 61: one epoch of Z's command on a slice of Fashion-MNIST, the teacher's answers kept once
(the default without augmentation) against the teacher run on every batch, alternated A B A B.

    python docs/results/reuse-stop61/teacher_ab.py TEACHER.pt [IMAGES] [PAIRS]
"""
import sys
import time

import mwt.train as training
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
fits = training.fits
for _ in range(pairs):
    for kept in (True, False):
        training.fits = fits if kept else (lambda *_: False)
        t = time.perf_counter()
        ck = train(config, data.train, data.test, show_progress=False)
        h = ck.training["history"][-1]
        print(f"{'kept' if kept else 'per batch'}: {time.perf_counter() - t:.2f} s in all, epoch {h['seconds']:.2f} s, "
              f"distill {h['distill']:.5f}, similarity {h['similarity']:.6f}, test {h['test_acc']:.4f}", flush=True)
