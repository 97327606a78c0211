"""Print runs' figures for docs/results.md: python figs.py DIR R3 R4.

DIR holds R.jsonl, R-modularize.txt and R-reuse.json as they are kept here (docs/results/reuse-stop33
and reuse-stop34). The reuse matrix's min/median/mean/max are the benchmark's own summary; this adds
only what the summary lacks: the worst sub-task, how many reach 3x, and files against simulation.
"""
import json, sys
D = sys.argv[1]
for r in sys.argv[2:]:
    E = [e for e in map(json.loads, open(f'{D}/{r}.jsonl')) if 'epoch' in e]
    last = E[-5:]
    print(r, 'epochs', [e['epoch'] for e in last], 'test', [round(100*e['test_acc'], 2) for e in last],
          'train %.1f' % (100*E[-1]['train_acc']), 'flops %.4f' % E[-1]['flops'], 'coupling', round(E[-1]['coupling'], 3),
          'first 6 flops', [round(e['flops'], 3) for e in E[:6]])
    print(open(f'{D}/{r}-modularize.txt').read())
    report = json.load(open(f'{D}/{r}-reuse.json'))
    for k, rows in ((k, report['results'][r][k]) for k in ('pairs', 'triples')):
        s = report['summary'][r][k]
        worst = max(rows, key=lambda p: p['gate_free_drop'])
        print(f' {k}: drop median {s["gate_free_drop_pp"]["median"]:.2f} worst {s["gate_free_drop_pp"]["max"]:.2f} {worst["classes"]}; '
              f'flops mean {s["flops_kept_pct"]["mean"]:.2f} ({s["flops_kept_pct"]["min"]:.2f}-{s["flops_kept_pct"]["max"]:.2f}); '
              f'speedup median {s["speedup_b32"]["median"]:.2f} ({s["speedup_b32"]["min"]:.2f}-{s["speedup_b32"]["max"]:.2f}), '
              f'>=3x: {sum(p["speedup"] >= 3 for p in rows)}/{len(rows)}; '
              f'onnx==sim max diff {max(abs(p["gate_free_onnx_acc"] - p["gate_free_acc"]) for p in rows)}')
