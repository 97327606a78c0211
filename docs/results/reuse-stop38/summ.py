import json, statistics, sys
for f in sys.argv[1:]:
    d = json.load(open(f))
    for g in ("pairs", "triples"):
        rows = d[g]["subtasks"]
        drops = [100 * r["gate_free_drop"] for r in rows]
        fl = [100 * r["flops_kept"] for r in rows]
        worst = max(rows, key=lambda r: r["gate_free_drop"])
        print(f"{f} {g}: drop median {statistics.median(drops):.2f} worst {max(drops):.2f} ({'/'.join(worst['classes'])}), "
              f"{sum(x > 2 for x in drops)} over 2 pp; FLOPs mean {statistics.mean(fl):.2f}")
