"""Stop 52: resume a kept epoch snapshot of R2 (P1s1's replay) as if the collapse guard had rewound
to it, with a guard response given as factors, for a few epochs: which response keeps the class
parting from collapsing?

usage: branch52.py SNAPSHOT.pt LOG.jsonl LAST_EPOCH [lr=F backoff=F] [key=value...]
  lr: factor on the learning rate (the cosine schedule scales on from the group's rate, so it lasts);
  backoff: the factor on the FLOPs weight (RunState.backoff); the rest: TrainConfig overrides.
With lr or backoff the run counts as rewound once (RunState.rewinds = 1), so the guard, if on, rewinds at
most twice more; without them the snapshot's state is resumed as it is (a branch trained on to the end).
A resumable checkpoint goes to LOG.pt after every epoch (after LAST_EPOCH and one step of the next, where
it stops), and the finished run there too.
"""
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from mwt.checkpoint import load_checkpoint, save_checkpoint
from mwt.core.errors import Interrupted
from mwt.data import load_dataset
from mwt.train import TrainConfig, train

snapshot, log, last = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
lr, backoff, changes = None, None, {}
for kv in sys.argv[4:]:
    k, v = kv.split("=")
    if k == "lr":
        lr = float(v)
    elif k == "backoff":
        backoff = float(v)
    else:
        changes[k] = type(getattr(TrainConfig(), k))(v)
ck = load_checkpoint(snapshot)
if lr is not None or backoff is not None:
    for group in ck.resume["optimizer"]["param_groups"]:
        group["lr"] *= lr or 1.0
    ck.resume["scheduler"]["_last_lr"] = [g["lr"] for g in ck.resume["optimizer"]["param_groups"]]
    ck.resume["rewinds"], ck.resume["backoff"] = 1, backoff or 1.0
config = replace(TrainConfig.from_dict(ck.training["config"]), **changes)
data = load_dataset(ck.source, None, False, show_progress=False)


def stop_after(epoch, _model):
    if epoch == last:  # a stop request: the run saves itself resumable at the next step and ends
        os.kill(os.getpid(), signal.SIGINT)
    return {}


try:
    done = train(config, data.train, data.test, log_path=log, show_progress=False, resume=ck, on_epoch_end=stop_after,
                 source=data.source, save_path=log.with_suffix(".pt"), save_every=1)
except Interrupted:
    sys.exit(0)
save_checkpoint(done, log.with_suffix(".pt"))
