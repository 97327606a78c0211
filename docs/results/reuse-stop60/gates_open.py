"""Ya's trained weights with every gate open (no routing), BatchNorm re-estimated on 20,000 training images:
is the whole model's gap the gates' routing or the weights? (Stop 60.)

    python docs/results/reuse-stop60/gates_open.py CKPT
"""
import sys, torch
from torch import nn
from mwt.checkpoint import load_checkpoint
from mwt.data import load_split, batches_in_order
from mwt.models import gated_layers
from mwt.modularize import frozen_gates
torch.set_num_threads(1)
ck = load_checkpoint(sys.argv[1]); model = ck.build().eval()
test = load_split(ck.source, "test", None, False, classes=ck.classes)
train = load_split(ck.source, "train", None, False, classes=ck.classes)
def acc(m):
    with torch.no_grad():
        return sum(int((m(x)[0].argmax(1) == y).sum()) for x, y in batches_in_order(test, torch.arange(len(test)), 500)) / len(test)
print("dynamic", acc(model), flush=True)
opened = {n: torch.ones(l.conv.out_channels if hasattr(l, 'conv') else l.out_channels) for n, l in gated_layers(model)}
with frozen_gates(model, opened):
    print("all gates open, BN as trained", acc(model), flush=True)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d): m.reset_running_stats(); m.momentum = None
    model.train()
    with torch.no_grad():
        for i, (x, _) in enumerate(batches_in_order(train, torch.randperm(len(train))[:20000], 500)): model(x)
    model.eval()
    print("all gates open, BN re-estimated", acc(model), flush=True)
