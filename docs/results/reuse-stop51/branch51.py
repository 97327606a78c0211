"""Stop 51: resume a kept epoch snapshot of R1 (P1s1's replay) with changed settings for a few
epochs, to see which change keeps the class parting from collapsing.

usage: branch51.py SNAPSHOT.pt LOG.jsonl LAST_EPOCH key=value...   (e.g. gamma=2.0 flops_target=0.2)
"""
import sys
from dataclasses import replace
from pathlib import Path

from mwt.checkpoint import load_checkpoint
from mwt.data import load_dataset
from mwt.train import TrainConfig, train

snapshot, log, last = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
changes = {}
for kv in sys.argv[4:]:
    k, v = kv.split("=")
    changes[k] = type(getattr(TrainConfig(), k))(v) if getattr(TrainConfig(), k) is not None else v
ck = load_checkpoint(snapshot)
config = replace(TrainConfig.from_dict(ck.training["config"]), **changes)
data = load_dataset(ck.source, None, False, show_progress=False)


def stop_after(epoch, _model):
    if epoch > last:
        raise SystemExit(0)
    return {}


train(config, data.train, data.test, log_path=log, show_progress=False, resume=ck, on_epoch_end=stop_after,
      source=data.source)
