#!/bin/bash
# per-epoch figures of the stop-32 runs: bash show.sh [P Q]
cd "$(dirname "$0")"  # the runs' logs are kept beside this script
for f in ${@:-P Q}; do python3 -c "
import json
for l in open('$f.jsonl'):
    d=json.loads(l)
    if 'epoch' in d: print('$f', d['epoch'], round(d['test_acc']*100,2), 'flops',round(d['flops'],4), 'train',round(d['train_acc'],4), 'coup', round(d['coupling'],3), 's', round(d['seconds']))
"; done
