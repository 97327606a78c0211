"""Stop 51: the largest fall of training accuracy (and rise of coupling) between consecutive epochs in every
30-epoch run logged on this VM (stops 43-51), the figures the collapse guard's threshold (mwt.collapse) was
set from. Usage: python falls.py LOG.jsonl ...  (a log's abandoned epochs, after a rewind, are left out: the
last record of each epoch counts)."""
import json
import sys

for path in sys.argv[1:]:
    records = {}
    for line in open(path):
        r = json.loads(line)
        if "epoch" in r and "train_acc" in r:
            records[r["epoch"]] = r
    epochs = sorted(records)
    fall = max(((records[e - 1]["train_acc"] - records[e]["train_acc"], e) for e in epochs if e - 1 in records),
               default=(0.0, None))
    rise = max(((records[e].get("coupling", 0) - records[e - 1].get("coupling", 0), e) for e in epochs
                if e - 1 in records), default=(0.0, None))
    last = records[epochs[-1]] if epochs else {}
    print(f"{path:40s} epochs {len(epochs):3d}  largest fall {100 * max(fall[0], 0):5.1f} pp (epoch {fall[1]})  "
          f"largest coupling rise {max(rise[0], 0):.3f} (epoch {rise[1]})  last train {last.get('train_acc', 0):.3f}")
