"""Print runs' figures for docs/results.md: python figs.py DIR R3 R4 (epochs 26-30, train acc, FLOPs, modularize, reuse matrix).

DIR holds R.jsonl, R-modularize.txt and R-a8/reuse.json as score.sh writes them."""
import json, sys, statistics as st
D = sys.argv[1]
for r in sys.argv[2:]:
    E = [json.loads(l) for l in open(f'{D}/{r}.jsonl')]
    E = [e for e in E if 'epoch' in e]
    last = E[-5:]
    print(r, 'epochs', [e['epoch'] for e in last], 'test', [round(100*e['test_acc'], 2) for e in last],
          'train %.1f' % (100*E[-1]['train_acc']), 'flops %.4f' % E[-1]['flops'], 'coupling', round(E[-1]['coupling'], 3),
          'first 6 flops', [round(e['flops'], 3) for e in E[:6]])
    try:
        print(open(f'{D}/{r}-modularize.txt').read())
        d = json.load(open(f'{D}/{r}-a8/reuse.json'))['results'][r]
    except FileNotFoundError:
        continue
    for k in ('pairs', 'triples'):
        P = d[k]
        w = max(P, key=lambda p: p['gate_free_drop'])
        f = [100*p['flops_kept'] for p in P]; s = [p['speedup'] for p in P]
        print(f' {k}: drop median {100*st.median(p["gate_free_drop"] for p in P):.2f} worst {100*w["gate_free_drop"]:.2f} {w["classes"]}; '
              f'flops mean {st.mean(f):.2f} ({min(f):.2f}-{max(f):.2f}); speedup median {st.median(s):.2f} ({min(s):.2f}-{max(s):.2f}), >=3x: {sum(x >= 3 for x in s)}/{len(s)}; '
              f'onnx==sim max diff {max(abs(p["gate_free_onnx_acc"]-p["gate_free_acc"]) for p in P)}')
