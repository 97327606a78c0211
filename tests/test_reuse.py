"""The reuse recipe's sub-task route, the reuse matrix, and `mwt eval --all-pairs`."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import torch

from exporter.compile import ModuleCompiler
from mwt.checkpoint import load_checkpoint, save_checkpoint
from mwt.cli import main
from mwt.core.errors import MwtError
from mwt.core.metadata import GateMode
from mwt.data import Split, load_split
from mwt.evaluate import accuracy
from mwt.finetune import FinetuneConfig
from mwt.losses import decisiveness, gate_preactivations, generator_only_gates, gate_similarity_losses
from mwt.models import build_model, gated_layers
from mwt.reuse_matrix import all_pairs, random_subtasks, score_subtasks
from mwt.subtask_route import RouteSettings, SubtaskRoute, subtask_cross_entropy
from mwt.train import train
from mwt.train_config import TrainConfig
from runtime.composed import ComposedClassifier
from runtime.module_file import module_from_model
from tests.conftest import tiny_spec
from tests.synthetic import random_checkpoint


def _route(share: float = 0.5) -> tuple[torch.nn.Module, SubtaskRoute]:
    model = build_model(tiny_spec("vgg11", width=0.0625))
    return model, SubtaskRoute(model, 10, RouteSettings(share), torch.device("cpu"))


def test_plan_routes_seen_classes_into_subtasks_holding_their_own_class():
    _, route = _route(0.5)
    labels = torch.arange(200) % 10
    assert not route.plan(labels, torch.Generator().manual_seed(0)).routed.any()  # nothing seen yet
    route.seen[:] = True
    plan = route.plan(labels, torch.Generator().manual_seed(0))
    again = route.plan(labels, torch.Generator().manual_seed(0))
    assert torch.equal(plan.routed, again.routed) and torch.equal(plan.members, again.members)
    assert 60 < int(plan.routed.sum()) < 140
    own = labels[plan.routed]
    assert bool(plan.members[torch.arange(len(own)), own].all())
    assert set(plan.members.sum(1).tolist()) == {2, 3}


def test_plan_routes_only_rows_of_classes_already_seen():
    # (Under torchrun the processes then agree on the fewest routed rows: test_training's two-process run.)
    _, route = _route(0.5)
    route.seen[:5] = True
    labels = torch.arange(64) % 10
    plan = route.plan(labels, torch.Generator().manual_seed(0))
    assert plan.routed.any() and bool((labels[plan.routed] < 5).all())


def test_plan_leaves_every_batch_a_dynamic_row():
    _, route = _route(0.99)
    route.seen[:] = True
    for seed in range(10):
        assert not route.plan(torch.tensor([3]), torch.Generator().manual_seed(seed)).routed.any()
        plan = route.plan(torch.arange(4), torch.Generator().manual_seed(seed))
        assert int((~plan.routed).sum()) >= 1 and plan.members.shape[0] == int(plan.routed.sum())


def test_a_reuse_run_whose_last_batch_is_one_row_trains_to_the_end(tmp_path, capsys, tiny_fashion_dir):
    # 33 images in batches of 16: the last batch is one row, and a routed one left MwT's losses no rows (NaN).
    out = tmp_path / "m.pt"
    code = main(["train", "--data-dir", str(tiny_fashion_dir), "--recipe", "reuse", "--model", "vgg11", "--width",
                 "0.0625", "--limit", "33", "--batch-size", "16", "--epochs", "4", "-o", str(out), "-q"])
    assert code == 0 and out.exists(), capsys.readouterr().err


def _two_class_folder(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def test_the_reuse_recipe_trains_a_two_class_task_and_eval_refuses_triples_of_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MWT_CACHE", str(tmp_path / "cache"))
    assert RouteSettings.for_task(0.5, 2).sizes == (2,) and RouteSettings.for_task(0.5, 10).sizes == (2, 3)
    out = tmp_path / "m.pt"
    code = main(["train", "--dataset", str(_two_class_folder(tmp_path / "pets")), "--recipe", "reuse", "--model",
                 "vgg11", "--width", "0.0625", "--batch-size", "8", "--epochs", "2", "-o", str(out), "-q"])
    assert code == 0 and out.exists(), capsys.readouterr().err
    assert load_checkpoint(out).training["history"][-1]["subtask_ce"] > 0  # rows went through the 2-class sub-task
    assert main(["modularize", str(out), "-q"]) == 0
    capsys.readouterr()
    code = main(["eval", str(out), "--triples", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "at least 3 classes" in err[0], err


def test_a_seed_torch_cannot_take_is_refused_before_any_work(tmp_path, capsys, tiny_fashion_dir):
    with pytest.raises(MwtError, match="seed"):
        TrainConfig(seed=2**64).validate()
    with pytest.raises(MwtError, match="seed"):
        FinetuneConfig(seed=-1).validate()
    out = tmp_path / "m.pt"
    code = main(["train", "--data-dir", str(tiny_fashion_dir), "--epochs", "1", "--seed", str(2**64), "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--seed" in err[0] and not out.exists(), err


def test_static_gates_are_the_union_of_the_classes_sets_at_their_mean_gate():
    _, route = _route()
    c = route.frequency[0].shape[1]
    route.frequency[0] = torch.zeros(10, c)
    route.frequency[0][1, 0] = route.frequency[0][2, 1] = 1.0  # class 1 keeps kernel 0, class 2 kernel 1
    route.mean[0] = torch.full((10, c), 0.2)
    route.mean[0][1] = 0.6
    members = torch.zeros(1, 10, dtype=torch.bool)
    members[0, [1, 2]] = True
    gate = route.static_gates(members)[0][0]
    assert gate[0] == pytest.approx(0.4) and gate[1] == pytest.approx(0.4)  # mean of 0.6 and 0.2
    assert not bool(gate[2:].any())


def test_routing_replaces_only_the_routed_rows_and_is_gone_after():
    model, route = _route()
    route.seen[:] = True
    x = torch.rand(8, 1, 28, 28)
    labels = torch.arange(8)
    plan = route.plan(labels, torch.Generator().manual_seed(3))
    model.eval()
    with torch.no_grad():
        _, plain = model(x)
        with route.routing(model, plan):
            _, routed = model(x)
        _, after = model(x)
    static = route.static_gates(plan.members)
    for p, r, a, s in zip(plain, routed, after, static):
        assert torch.equal(r[plan.routed], s) and torch.equal(r[~plan.routed], p[~plan.routed])
        assert torch.equal(a, p)


def test_subtask_cross_entropy_scores_only_the_subtasks_classes():
    logits = torch.tensor([[5.0, 0.0, 9.0]])
    members = torch.tensor([[True, True, False]])
    assert float(subtask_cross_entropy(logits, members, torch.tensor([0]))) < 0.01  # class 2's 9.0 is not a rival


@pytest.mark.parametrize("damage", ["shape", "nan", "missing"])
def test_malformed_route_statistics_are_one_error(damage):
    _, route = _route()
    state = route.state_dict()
    if damage == "shape":
        state["frequency"][0] = torch.zeros(3, 3)
    elif damage == "nan":
        state["mean"][1] = torch.full_like(state["mean"][1], float("nan"))
    else:
        del state["seen"]
    with pytest.raises(MwtError, match="sub-task statistics"):
        route.load_state_dict(state)


def test_reuse_training_trains_the_routed_rows_and_records_their_loss():
    g = torch.Generator().manual_seed(0)
    data = Split((torch.rand(96, 1, 28, 28, generator=g) * 255).to(torch.uint8), torch.arange(96) % 10)
    config = TrainConfig.from_recipe("reuse", model="vgg11", width=0.0625, batch_size=32, epochs=2, device="cpu")
    assert config.reuse == 0.5 and config.gamma > 0 and config.delta > 0
    history = train(config, data, data, show_progress=False).training["history"]
    assert history[-1]["subtask_ce"] > 0  # rows were routed once their classes had been seen
    assert 0 < history[-1]["decisiveness"] <= 1


@pytest.mark.parametrize(("align", "pad_limit", "threshold", "rounding"),
                         [(8, None, 0.9, "up"), (4, 0.0, 0.9, "up"), (8, None, 0.98, "up"), (4, None, 0.9, "down")])
def test_gate_free_score_is_the_exported_module_file_on_the_same_images(tiny_fashion_dir, align, pad_limit, threshold,
                                                                        rounding):
    # The reuse matrix's data-free gate-free figure is what the folded module file answers, with
    # every stream rounded up, (a pad limit of 0) none, or down, at the default or a stricter threshold.
    ckpt = random_checkpoint("vgg11", width=0.125, seed=4, retain=0.5)
    test = load_split("fashion-mnist", "test", tiny_fashion_dir)
    (score,) = score_subtasks(ckpt, [(7, 8)], test, threshold=threshold, align=align, pad_limit=pad_limit,
                              rounding=rounding)
    compiler = ModuleCompiler(ckpt)
    selection = compiler.select([7, 8], threshold=threshold, align=align, pad_limit=pad_limit, rounding=rounding)
    assert bool(selection.unaligned) == (pad_limit is not None)
    if threshold != 0.9:  # a stricter threshold keeps fewer kernels, and the score is priced on them
        default = compiler.select([7, 8], align=align, pad_limit=pad_limit)
        assert selection.krr < default.krr  # the same layers' kernels, so fewer kept
        assert score.flops_kept == pytest.approx(compiler.cost.kept_fraction(selection.kept, 2))
    module, _ = compiler.compile(selection, GateMode.folded)
    data = test.where([7, 8]).materialize()
    logits = ComposedClassifier([module_from_model(module)]).logits(data.images.numpy().astype(np.float32) / 255)
    expected = float((logits.argmax(1) == (data.labels.numpy() == 8)).mean())
    assert score.gate_free_acc == pytest.approx(expected, abs=1e-9)
    # the full model's figure comes from one pass over every test image, sliced per sub-task
    assert score.full_acc == pytest.approx(accuracy(ckpt.build(), test, classes=[7, 8]), abs=1e-9)
    assert score.samples == len(data) and 0 < score.flops_kept < 1


def test_decisiveness_is_zero_for_crisp_classes_and_reaches_closed_gates():
    labels = torch.tensor([0, 0, 1, 1])
    crisp = torch.tensor([[9.0, -9.0], [9.0, -9.0], [-9.0, 9.0], [-9.0, 9.0]])
    assert float(decisiveness([crisp], labels, 2)) < 1e-3
    split = torch.tensor([[0.0, 0.0]] * 4, requires_grad=True)  # every gate at the edge: p = 1/2
    loss = decisiveness([split], labels, 2)
    assert float(loss.detach()) == pytest.approx(1.0)
    undecided = torch.tensor([[2.0], [2.0], [-2.0]], requires_grad=True)  # mostly open: push all open
    decisiveness([undecided], torch.zeros(3, dtype=torch.long), 1).backward()
    assert bool((undecided.grad < 0).all())  # the closed gate (negative pre-activation) is pushed open too
    assert float(decisiveness([crisp], torch.tensor([0, 1, 2, 3]), 4)) == 0.0  # one sample per class: no figure


def test_gate_preactivations_are_the_generators_and_hooks_go():
    model, _ = _route()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad(), gate_preactivations(model) as found:
        _, gates = model(x)
    assert len(found) == len(gates) and all(torch.equal(torch.relu(torch.tanh(z)), g) for z, g in zip(found, gates))
    with torch.no_grad():
        model(x)
    assert len(found) == len(gates)


def test_generator_only_gates_equal_the_forwards_and_train_only_the_generators():
    model, _ = _route()
    x = torch.rand(6, 1, 28, 28)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    with generator_only_gates(model) as local, gate_preactivations(model) as found:
        _, gates = model(x)
    assert len(local.gates) == len(gates) == len(found) == len(local.preactivations)
    assert all(torch.allclose(a, b) for a, b in zip(local.gates, gates))
    assert all(torch.allclose(a, b) for a, b in zip(local.preactivations, found))  # the real forward's hooks only
    cohesion, coupling = gate_similarity_losses(local.gates, labels)
    (cohesion + coupling + decisiveness(local.preactivations, labels, 3)).backward()
    generators = [p for _, b in gated_layers(model) for p in b.gate.parameters()]
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in generators)
    rest = [p for n, p in model.named_parameters() if ".gate." not in n]
    assert rest and all(p.grad is None for p in rest)  # no gate loss reaches a conv, BN or classifier weight
    model.zero_grad(set_to_none=True)
    cohesion, coupling = gate_similarity_losses(gates, labels)
    (cohesion + coupling).backward()  # the forward's own gates (MwT): the losses reach the convs too
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in rest)
    with torch.no_grad():
        model(x)
    assert len(local.gates) == len(gates)  # the hooks went with the block


def test_subtask_lists():
    assert len(all_pairs(10)) == 45 and all(a < b for a, b in all_pairs(10))
    triples = random_subtasks(10, 3, 20, seed=0)
    assert len(set(triples)) == 20 and triples == random_subtasks(10, 3, 20, seed=0)
    assert len(random_subtasks(4, 3, 20)) == 4  # all there are


def test_eval_all_pairs_prints_the_matrix_and_json(tmp_path, capsys, tiny_fashion_dir):
    path = tmp_path / "m.pt"
    save_checkpoint(random_checkpoint("vgg11", width=0.0625, seed=2, retain=0.6), path)
    assert main(["eval", str(path), "--all-pairs", "--triples", "2", "--data-dir", str(tiny_fashion_dir), "-q"]) == 0
    out = capsys.readouterr().out
    assert "pairs: 45 sub-tasks" in out and "triples: 2 sub-tasks" in out and "gate-free drop" in out
    assert "% of all-classes module" in out and "the module of all 10 classes keeps" in out
    assert main(["eval", str(path), "--triples", "3", "--json", "--data-dir", str(tiny_fashion_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["all_classes_flops_kept", "triples"] and len(result["triples"]["subtasks"]) == 3
    row = result["triples"]["subtasks"][0]
    assert {"full_acc", "dynamic_acc", "gate_free_acc", "flops_kept", "gate_free_drop"} <= set(row)
    # Each triple's share of the module of every class: its FLOPs over that module's, a subset's at most 1
    # unaligned; here aligned to 8 (the default), so checked against the figures themselves.
    every = result["all_classes_flops_kept"]
    shares = [r["flops_kept"] / every for r in result["triples"]["subtasks"]]
    share = result["triples"]["summary"]["all_classes_share"]
    assert 0 < every <= 1 and (share["min"], share["max"]) == (pytest.approx(min(shares)), pytest.approx(max(shares)))


@pytest.mark.parametrize(("args", "message"), [
    (["--all-pairs", "--classes", "sneaker,bag"], "either --classes"),
    ([], "either --classes"),
    (["--all-pairs", "--threshold", "1.5"], "threshold"),
    (["--all-pairs", "--pad-limit", "-1"], "pad-limit"),
    # --classes reports the unaligned union: options that shape only the matrix's modules would pass unnoticed
    (["--classes", "sneaker,bag", "--align", "16"], "--align shapes the modules of --all-pairs"),
    (["--classes", "sneaker,bag", "--pad-limit", "0"], "--pad-limit shapes"),
    (["--classes", "sneaker,bag", "--rounding", "down"], "--rounding shapes"),
])
def test_eval_bad_input_is_one_line(tmp_path, capsys, shared_checkpoint_file, args, message):
    code = main(["eval", str(shared_checkpoint_file), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_reuse_benchmark_refuses_bad_options_in_one_line_and_writes_nothing(tmp_path, capsys, shared_checkpoint_file):
    from benchmarks.reuse import main as bench

    out = tmp_path / "bench"
    for args, message in ((["--align", "0"], "align must be a whole number"),
                          (["--pad-limit", "nan"], "pad limit must be a finite number"),
                          (["--threshold", "0"], "threshold must be a finite number"),
                          (["--calls-per-turn", "0"], "--calls-per-turn must be at least 1"),
                          (["--rounds", "0"], "--rounds must be at least 1"),
                          (["--timed", "-1"], "--timed must be at least 0"),
                          (["--data-dir", str(tmp_path / "nowhere")], "nowhere")):
        assert bench([str(shared_checkpoint_file), *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0] and not out.exists(), (args, err)


def test_reuse_benchmark_times_the_sub_tasks_in_passes_and_reports_how_far_the_median_moved(tmp_path, capsys,
                                                                                             tiny_fashion_dir,
                                                                                             monkeypatch):
    # Passes run over all timed sub-tasks in turn (not one sub-task's timings in a row); each timed
    # row keeps its passes' speedups and their median; the per-pass medians are the medians over the
    # timed sub-tasks of each pass, in the order the passes ran.
    import benchmarks.reuse as reuse

    timed_outputs = []
    real = reuse.compare_latency

    def recording(candidates, *args, **kwargs):
        # which module was timed: the number of classes it answers tells the pairs from the triples,
        # and its output on a fixed batch tells the modules of one group apart
        x = np.ones((1, *tiny_spec("vgg11").input_shape), np.float32)
        timed_outputs.append(np.asarray(candidates["module"](x)).round(4).tobytes())
        return real(candidates, *args, **kwargs)

    monkeypatch.setattr(reuse, "compare_latency", recording)
    path = tmp_path / "m.pt"
    save_checkpoint(random_checkpoint("vgg11", width=0.0625, seed=2, retain=0.6), path)
    out = tmp_path / "bench"
    assert reuse.main([str(path), "--names", "tiny", "--data-dir", str(tiny_fashion_dir), "--triples", "2",
                       "--timed", "3", "--rounds", "3", "--min-seconds", "0.01", "--calls-per-turn", "2",
                       "--out", str(out)]) == 0
    assert "median_speedup_by_pass" in capsys.readouterr().out
    pair_order, triple_order = timed_outputs[:9], timed_outputs[9:]
    assert pair_order == pair_order[:3] * 3 and len(set(pair_order)) == 3  # a, b, c, a, b, c, a, b, c
    assert triple_order == triple_order[:2] * 3 and len(set(triple_order)) == 2  # --timed beyond the group
    report = json.loads((out / "reuse.json").read_text())
    assert report["rounds"] == 3 and (out / "reuse.png").stat().st_size > 0
    result = report["results"]["tiny"]
    pairs, triples = result["pairs"], result["triples"]
    assert len(pairs) == 45 and all(r["speedup"] is None and r["speedups"] == [] for r in pairs[3:])
    for row in pairs[:3] + triples:
        assert len(row["speedups"]) == 3 and min(row["speedups"]) > 0
        assert row["speedup"] == statistics.median(row["speedups"])
    by_pass = [statistics.median(r["speedups"][i] for r in pairs[:3]) for i in range(3)]
    assert result["pairs_median_speedup_by_pass"] == by_pass
    summary = report["summary"]["tiny"]["pairs"]
    assert (summary["median_speedup_by_pass"]["min"], summary["median_speedup_by_pass"]["max"]) == (min(by_pass),
                                                                                                   max(by_pass))
    assert summary["speedup_b32"]["median"] == statistics.median(r["speedup"] for r in pairs[:3])


def test_reuse_benchmark_with_one_pass_or_nothing_timed_reports_no_pass_spread(tmp_path, tiny_fashion_dir):
    from benchmarks.reuse import main as bench

    path = tmp_path / "m.pt"
    save_checkpoint(random_checkpoint("vgg11", width=0.0625, seed=2, retain=0.6), path)
    for timed, rounds in (("1", "1"), ("0", "2")):
        out = tmp_path / f"bench-{timed}-{rounds}"
        assert bench([str(path), "--data-dir", str(tiny_fashion_dir), "--triples", "0", "--timed", timed,
                      "--rounds", rounds, "--min-seconds", "0.01", "--out", str(out)]) == 0
        report = json.loads((out / "reuse.json").read_text())
        pairs = report["summary"]["m"]["pairs"]
        assert "median_speedup_by_pass" not in pairs
        assert ("speedup_b32" in pairs) == (timed == "1")
        assert [len(r["speedups"]) for r in report["results"]["m"]["pairs"][:2]] == [int(timed), 0]


def test_reuse_benchmark_puts_each_sub_task_beside_the_module_of_every_class(tmp_path, tiny_fashion_dir):
    # A pair's share of the all-classes module tells modules from one pruned network all classes
    # share. Unaligned, a pair keeps a subset of its kernels: at most 100%.
    from benchmarks.reuse import main as bench
    from exporter.compile import ModuleCompiler

    path = tmp_path / "m.pt"
    save_checkpoint(random_checkpoint("vgg11", width=0.0625, seed=2, retain=0.1), path)
    out = tmp_path / "bench"
    assert bench([str(path), "--data-dir", str(tiny_fashion_dir), "--triples", "2", "--timed", "0",
                  "--align", "1", "--out", str(out)]) == 0
    report = json.loads((out / "reuse.json").read_text())
    result = report["results"]["m"]
    compiler = ModuleCompiler.from_file(path)
    every = compiler.cost.kept_fraction(compiler.select(list(range(10)), align=1).kept, 10)
    assert result["all_classes_flops_kept"] == pytest.approx(every) and 0 < every < 1
    for group in ("pairs", "triples"):
        shares = [100 * r["flops_kept"] / every for r in result[group]]
        spread = report["summary"]["m"][group]["flops_of_all_classes_pct"]
        assert spread["max"] == pytest.approx(max(shares)) and spread["min"] == pytest.approx(min(shares))
        assert 0 < spread["min"] and spread["max"] <= 100 + 1e-9
    assert report["summary"]["m"]["pairs"]["flops_of_all_classes_pct"]["min"] < 100  # random gates: modules differ


def test_all_pairs_of_a_checkpoint_never_modularized_names_the_fix(tmp_path, capsys):
    ckpt = random_checkpoint("vgg11", width=0.0625)
    ckpt.modularization = None
    path = tmp_path / "raw.pt"
    save_checkpoint(ckpt, path)
    assert main(["eval", str(path), "--all-pairs"]) == 2
    err = capsys.readouterr().err.strip()
    assert "mwt modularize" in err and str(path) in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--recipe", "nope"], "nope"),
    (["--reuse", "1.5"], "--reuse"),
    (["--reuse", "nan"], "--reuse"),
    (["--standard", "--reuse", "0.5"], "standard model"),
    (["--delta", "-1"], "--delta"),
    (["--cost-block", "0"], "--cost-block"),
    (["--cost-block", "16"], "FLOPs term"),  # the paper recipe has none to shape
    (["--free-channels", "-1"], "--free-channels"),
    (["--free-channels", "8"], "FLOPs term"),
    (["--flops-target", "1"], "--flops-target"),
    (["--flops-target", "-0.1"], "--flops-target"),
    (["--flops-target", "0.2"], "FLOPs term"),
    (["--standard", "--coupling-by-cost"], "--coupling-by-cost"),
    (["--beta", "0", "--coupling-by-cost"], "--coupling-by-cost"),
    (["--gate-losses", "backbone"], "--gate-losses"),
    (["--standard", "--gate-losses", "generators"], "--gate-losses"),
    (["--settle-epochs", "-1"], "--settle-epochs"),
    (["--settle-epochs", "1"], "--settle-epochs"),  # of --epochs 1: no epoch left to train the gates
    (["--standard", "--settle-epochs", "1", "--epochs", "2"], "--settle-epochs"),
    (["--recipe", "reuse", "--budget-by-loss", "1"], "--flops-target"),
    (["--recipe", "reuse", "--flops-target", "0.2", "--budget-by-loss", "-1"], "--budget-by-loss"),
    (["--recipe", "reuse", "--flops-target", "0.2", "--budget-by-loss", "5"], "--budget-by-loss"),
    (["--recipe", "reuse", "--flops-target", "0.2", "--budget-by-loss", "nan"], "--budget-by-loss"),
    (["--recipe", "reuse", "--coupling-by-loss", "-1"], "--coupling-by-loss"),
    (["--recipe", "reuse", "--coupling-by-loss", "5"], "--coupling-by-loss"),
    (["--recipe", "reuse", "--coupling-by-loss", "nan"], "--coupling-by-loss"),
    (["--recipe", "reuse", "--beta", "0", "--coupling-by-loss", "1"], "--coupling-by-loss"),
    (["--standard", "--coupling-by-loss", "1"], "--coupling-by-loss"),
    (["--weight-decay", "-1e-4"], "--weight-decay"),
    (["--weight-decay", "1"], "--weight-decay"),
    (["--weight-decay", "nan"], "--weight-decay"),
    (["--similarity", "-1"], "--similarity"),
    (["--similarity", "inf"], "--similarity"),
    (["--recipe", "reuse", "--similarity", "1000"], "--teacher"),  # nothing to compare the features with
    (["--collapse-drop", "-0.1"], "--collapse-drop"),
    (["--collapse-drop", "1"], "--collapse-drop"),
    (["--collapse-drop", "nan"], "--collapse-drop"),
])
def test_train_bad_recipe_input_is_one_line(tmp_path, capsys, tiny_fashion_dir, args, message):
    out = tmp_path / "m.pt"
    code = main(["train", "--data-dir", str(tiny_fashion_dir), "--epochs", "1", "-o", str(out), "-q", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()


@pytest.mark.parametrize(("ramp", "warned"), [([], True), (["--gamma-warmup", "2"], False)])
def test_a_flops_target_without_a_ramp_warns_in_one_line_and_trains(tmp_path, capsys, tiny_fashion_dir, ramp, warned):
    out = tmp_path / "m.pt"
    code = main(["train", "--data-dir", str(tiny_fashion_dir), "--recipe", "cost", "--model", "vgg11", "--width",
                 "0.0625", "--limit", "32", "--batch-size", "16", "--epochs", "1", "--flops-target", "0.2", "-o",
                 str(out), "-q", *ramp])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0 and out.exists(), err
    warnings = [line for line in err if line.startswith("warning: ")]
    assert (warnings and len(warnings) == 1 and "--gamma-warmup" in warnings[0]) if warned else not warnings, err


def test_every_gated_layer_is_routed():
    model, route = _route()
    assert route.layers == [n for n, _ in gated_layers(model)]


def test_a_reuse_checkpoint_exports_a_data_free_gate_free_module_by_default(tmp_path, capsys, tiny_fashion_dir):
    import onnx

    from mwt.core.metadata import ModuleMetadata

    ckpt = random_checkpoint("vgg11", width=0.0625, seed=5, retain=0.5)
    ckpt.training = {"config": {"recipe": "reuse", "reuse": 0.5}}
    path = tmp_path / "reuse.pt"
    save_checkpoint(ckpt, path)
    no_data = tmp_path / "nothing-here"
    no_data.mkdir()
    out = tmp_path / "m.onnx"
    assert main(["export", "--classes", "sneaker,bag", str(path), "-o", str(out), "--data-dir", str(no_data)]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "gate-free, data-free" in captured.out
    model = onnx.load(out)
    meta = ModuleMetadata.read(model)
    assert meta.gates is GateMode.folded and meta.origin == "data-free"
    assert "Tanh" not in {n.op_type for n in model.graph.node}  # no mask generator left
    # With the training images at hand the guard still runs; a plain checkpoint still defaults to dynamic.
    assert main(["export", "--classes", "sneaker,bag", str(path), "-o", str(out), "--force-folded",
                 "--data-dir", str(tiny_fashion_dir)]) == 0
    ckpt.training = {}
    save_checkpoint(ckpt, path)
    assert main(["export", "--classes", "sneaker,bag", str(path), "-o", str(out), "--data-dir", str(no_data)]) == 0
    assert ModuleMetadata.read(onnx.load(out)).gates is GateMode.dynamic
