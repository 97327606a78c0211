"""Stop 61: what the losses tell a closed gate. A tiny reuse-recipe run (the test suite's TINY VGG11 on 96
random images, a 5% budget that the pull drives down) records, every step, the gradient of the loss with
respect to each gate that is 0 (a closed kernel): how many would open it (negative), close it further
(positive) or say nothing (zero).

    PYTHONPATH=. python docs/results/reuse-stop61/closed_gate_gradients.py
"""
import torch

from mwt.models.gate import MaskGenerator
from mwt.train import TrainConfig, train
from tests.test_training import TINY, _data

counts = {"closed": 0, "open it": 0, "close it": 0, "nothing": 0}


def record(_m: MaskGenerator, _inp: object, out: torch.Tensor) -> None:
    if not out.requires_grad:
        return
    closed = out.detach() == 0

    def seen(grad: torch.Tensor) -> None:
        g = grad[closed]
        counts["closed"] += g.numel()
        counts["open it"] += int((g < 0).sum())
        counts["close it"] += int((g > 0).sum())
        counts["nothing"] += int((g == 0).sum())

    out.register_hook(seen)


handles = []
original = MaskGenerator.__init__


def init(self: MaskGenerator, *args: object, **kwargs: object) -> None:
    original(self, *args, **kwargs)
    handles.append(self.register_forward_hook(record))


MaskGenerator.__init__ = init  # type: ignore[method-assign]
data = _data()
train(TrainConfig.from_recipe("reuse", epochs=3, seed=1, flops_target=0.05, budget_adapt=0.2, **TINY), data, data,
      show_progress=False)
print(counts)
