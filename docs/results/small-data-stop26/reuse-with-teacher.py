"""One-off: does distilling a standard model help the reuse recipe on ~1,400 images? (3 seeds, batch 64, 8 epochs)"""
import json, sys, statistics, tempfile
from pathlib import Path
sys.path.insert(0, "/work/main")
from benchmarks.small_data import digits_folder, run_recipe
from mwt.checkpoint import save_checkpoint
from mwt.data import load_dataset
from mwt.train import TrainConfig, train

out = []
with tempfile.TemporaryDirectory() as tmp:
    folder = digits_folder(Path(tmp))
    for seed in (0, 1, 2):
        cfg = TrainConfig(modular=False, dataset=str(folder), width=0.25, epochs=8, image_size=32, seed=seed,
                          storage="memory", batch_size=64)
        data = load_dataset(cfg.source(), None, False, show_progress=False)
        std = train(cfg, data.train, data.test, info=data.info, source=data.source, show_progress=False)
        path = Path(tmp) / f"std{seed}.pt"
        save_checkpoint(std, path)
        import benchmarks.small_data as sd
        orig = sd.TrainConfig.from_recipe
        def with_teacher(recipe, **kw):
            return orig(recipe, teacher=str(path), **kw)
        sd.TrainConfig.from_recipe = with_teacher
        r = run_recipe("reuse", folder, 8, 0.25, seed, 64)
        sd.TrainConfig.from_recipe = orig
        line = {"seed": seed, "standard": std.training["test_acc"], "reuse_kd": r["test_acc"],
                "flops_mean": r["pairs_flops_kept_pct"]["mean"], "drop": r["pairs_gate_free_drop_pp"]}
        print(line, flush=True)
        out.append(line)
json.dump(out, open("/work/runs/small-kd/kd.json", "w"), indent=1)
