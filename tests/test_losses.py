"""Cohesion and coupling losses against values computed by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from mwt.core.errors import MwtError
from mwt.losses import gate_similarity_losses, kernel_rate, modular_loss

R = 1 / math.sqrt(2)


def test_orthogonal_classes_give_zero_losses():
    gates = [torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])]
    coh, coup = gate_similarity_losses(gates, torch.tensor([0, 0, 1]))
    assert coh.item() == pytest.approx(0.0, abs=1e-6)
    assert coup.item() == pytest.approx(0.0, abs=1e-6)


def test_hand_computed_values():
    # a=(1,0), b=(1,1)/sqrt2, c=(0,1); same-label pair (a,b): cos R; different pairs (a,c)=0, (b,c)=R
    gates = [torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])]
    coh, coup = gate_similarity_losses(gates, torch.tensor([0, 0, 1]))
    assert coh.item() == pytest.approx(1 - R, abs=1e-6)
    assert coup.item() == pytest.approx(R / 2, abs=1e-6)


def test_an_almost_closed_gate_vector_has_a_bounded_gradient():
    # Stop 65: cohesion's gradient reached 4.7e8 in one step of a real run and it diverged; a gate vector
    # below GATE_NORM_FLOOR is now scaled, not stretched to length 1.
    tiny = torch.tensor([[1.0, 0.0], [1e-9, 2e-9], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    coh, coup = gate_similarity_losses([tiny], labels)
    (coh + coup).backward()
    assert tiny.grad is not None and torch.isfinite(tiny.grad).all()
    assert tiny.grad.abs().max().item() < 1e4
    # the tiny vector is near-orthogonal to everything: cohesion of pair (0, 1) ~0, pair (2, 3) R
    assert coh.item() == pytest.approx(1 - R / 2, abs=1e-5)
    # a gate vector above the floor is normalized as before
    assert gate_similarity_losses([torch.tensor([[0.01, 0.0], [0.02, 0.0]])], torch.tensor([0, 0]))[0].item() == \
        pytest.approx(0.0, abs=1e-6)


def test_losses_average_over_layers():
    labels = torch.tensor([0, 0, 1])
    layer1 = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cohesion 1-R, coupling R/2
    layer2 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # cohesion 0, coupling 1
    coh, coup = gate_similarity_losses([layer1, layer2], labels)
    assert coh.item() == pytest.approx((1 - R) / 2, abs=1e-6)
    assert coup.item() == pytest.approx((R / 2 + 1) / 2, abs=1e-6)


def test_coupling_weights_weigh_each_layers_coupling_and_leave_cohesion_alone():
    labels = torch.tensor([0, 0, 1])
    layer1 = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cohesion 1-R, coupling R/2
    layer2 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # cohesion 0, coupling 1
    coh, coup = gate_similarity_losses([layer1, layer2], labels, coupling_weights=[0.5, 1.5])
    assert coh.item() == pytest.approx((1 - R) / 2, abs=1e-6)
    assert coup.item() == pytest.approx((0.5 * R / 2 + 1.5 * 1) / 2, abs=1e-6)
    plain = gate_similarity_losses([layer1, layer2], labels)
    assert torch.equal(gate_similarity_losses([layer1, layer2], labels, coupling_weights=[1.0, 1.0])[1], plain[1])


def test_class_weights_make_coupling_a_weighted_mean_over_pairs_of_classes():
    # a=(1,0), b=(1,1)/sqrt2, c=(0,1), one class each: cos(a,b)=R, cos(a,c)=0, cos(b,c)=R
    gates = [torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])]
    labels = torch.tensor([0, 1, 2])
    # pair weights sqrt(w_a * w_b): (0,1) 2, (0,2) 1, (1,2) 2
    coh, coup = gate_similarity_losses(gates, labels, class_weights=torch.tensor([1.0, 4.0, 1.0]))
    assert coup.item() == pytest.approx((2 * R + 1 * 0 + 2 * R) / 5, abs=1e-6)
    assert coh.item() == 0.0
    plain = gate_similarity_losses(gates, labels)[1]
    assert plain.item() == pytest.approx(2 * R / 3, abs=1e-6)
    # equal weights, whatever their level, are the plain mean
    assert gate_similarity_losses(gates, labels, class_weights=torch.full((3,), 0.5))[1].item() == pytest.approx(plain.item())


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3], [5]])
def test_degenerate_batches_never_nan(labels):
    gates = [torch.rand(len(labels), 6), torch.zeros(len(labels), 3)]
    coh, coup = gate_similarity_losses(gates, torch.tensor(labels))
    assert torch.isfinite(coh) and torch.isfinite(coup)
    if len(set(labels)) == 1:
        assert coup.item() == 0.0
    if len(set(labels)) == len(labels):
        assert coh.item() == 0.0


def test_modular_loss_total_and_gradients():
    torch.manual_seed(0)
    logits = torch.randn(4, 3, requires_grad=True)
    gates = [torch.rand(4, 5, requires_grad=True)]
    labels = torch.tensor([0, 0, 1, 2])
    parts = modular_loss(logits, gates, labels, alpha=0.5, beta=1.5)
    coh, coup = gate_similarity_losses(gates, labels)
    expected = F.cross_entropy(logits, labels) + 0.5 * coh + 1.5 * coup
    assert parts.total.item() == pytest.approx(expected.item(), rel=1e-6)
    parts.total.backward()
    assert torch.isfinite(gates[0].grad).all() and gates[0].grad.abs().sum() > 0


def test_kernel_rate():
    assert float(kernel_rate([torch.tensor([[0.0, 0.5], [0.1, 0.0]]), torch.tensor([[0.2, 0.3]])])) == pytest.approx(4 / 6)
    assert float(kernel_rate([])) == 1.0


def test_similarity_distillation_compares_samples_not_channels():
    from mwt.distill import similarity_loss

    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(16, 32, generator=g)
    student = torch.randn(16, 8, generator=g).requires_grad_()
    # Each side's rows are compared with its own other rows only: the widths may differ, and scaling
    # the features or turning them by any orthogonal map changes nothing
    rotation, _ = torch.linalg.qr(torch.randn(32, 32, generator=g))
    assert float(similarity_loss(teacher, teacher)) == pytest.approx(0.0, abs=1e-7)
    assert float(similarity_loss(5 * teacher @ rotation, teacher)) == pytest.approx(0.0, abs=1e-6)
    loss = similarity_loss(student, teacher)
    b = teacher.shape[0]
    s = student.detach()
    g_s, g_t = F.normalize(s @ s.t(), dim=1), F.normalize(teacher @ teacher.t(), dim=1)
    assert float(loss.detach()) == pytest.approx(float(((g_s - g_t) ** 2).sum()) / b ** 2, rel=1e-5)
    assert float(loss.detach()) > 0
    loss.backward()
    assert torch.isfinite(student.grad).all() and float(student.grad.abs().max()) > 0
    assert float(similarity_loss(student[:1], teacher[:1]).detach()) == 0.0  # one row has no pair to compare


def test_a_student_row_whose_features_all_but_vanished_has_a_bounded_gradient():
    from mwt.distill import similarity_loss

    # A sample whose gates closed nearly every feature: normalizing its Gram row to length 1 would give a
    # gradient of about 1 / its length (4.6e6 here without the floor); under SIMILARITY_ROW_FLOOR it is scaled instead.
    g = torch.Generator().manual_seed(2)
    teacher = torch.randn(8, 16, generator=g)
    student = torch.randn(8, 4, generator=g)
    student[3] = 1e-9
    student.requires_grad_()
    loss = similarity_loss(student, teacher)
    loss.backward()
    assert torch.isfinite(student.grad).all()
    assert student.grad.abs().max().item() < 1e4
    # rows above the floor are normalized as before: the loss is still scale-free there
    healthy = torch.randn(8, 4, generator=g)
    assert float(similarity_loss(0.1 * healthy, teacher)) == pytest.approx(float(similarity_loss(healthy, teacher)),
                                                                          rel=1e-5)


def test_descending_the_similarity_term_gives_the_student_the_teachers_geometry():
    from mwt.distill import similarity_loss

    g = torch.Generator().manual_seed(1)
    group = F.one_hot(torch.arange(32) % 3, 3).float()
    # the teacher's features: three groups of samples, alike within a group, apart across groups; the
    # student's inputs carry the groups among noise
    teacher = group * 4 + 0.1 * torch.randn(32, 3, generator=g)
    inputs = torch.cat([group, torch.randn(32, 3, generator=g)], 1)
    torch.manual_seed(0)
    student = torch.nn.Linear(6, 16)
    optimizer = torch.optim.Adam(student.parameters(), lr=0.01)
    with torch.no_grad():
        first = float(similarity_loss(torch.relu(student(inputs)), teacher))
    for _ in range(300):
        optimizer.zero_grad()
        loss = similarity_loss(torch.relu(student(inputs)), teacher)
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.2 * first


def test_the_similarity_term_reads_the_classifiers_input_not_a_mask_generators():
    from mwt.distill import classifier_inputs, classifier_layer
    from mwt.models import build_model
    from mwt.models.spec import ModelSpec

    model = build_model(ModelSpec(arch="vgg11", num_classes=10, in_channels=1, input_size=(28, 28), width=0.0625,
                                  pad=2))
    assert classifier_layer(model) is model.classifier[-1]
    x = torch.rand(3, 1, 28, 28)
    with classifier_inputs(classifier_layer(model)) as seen:
        model(x)
    assert len(seen) == 1 and seen[0].shape == (3, model.classifier[-1].in_features)
    model(x)
    assert len(seen) == 1  # the hook is gone after the block
    with pytest.raises(MwtError, match="similarity"):
        classifier_layer(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)))


def test_distillation_is_the_teachers_kl_over_each_rows_allowed_classes():
    from mwt.distill import distillation_loss

    g = torch.Generator().manual_seed(0)
    student = (torch.randn(4, 10, generator=g) * 3).requires_grad_()
    teacher = torch.randn(4, 10, generator=g) * 3
    allowed = torch.zeros(4, 10, dtype=torch.bool)
    allowed[:2] = True  # whole-model rows
    allowed[2, [1, 7]] = True  # a pair
    allowed[3, [0, 4, 9]] = True  # a triple
    t = 4.0
    expected = 0.0
    for row in range(4):
        keep = allowed[row]
        p = F.softmax(teacher[row, keep] / t, 0)
        expected += float((p * (p.log() - F.log_softmax(student[row, keep].detach() / t, 0))).sum())
    loss = distillation_loss(student, teacher, t, allowed)
    assert math.isclose(float(loss.detach()), expected / 4 * t * t, rel_tol=1e-5)
    loss.backward()
    assert torch.isfinite(student.grad).all() and float(student.grad[~allowed].abs().max()) == 0.0
    assert float(distillation_loss(teacher, teacher, t)) == pytest.approx(0.0, abs=1e-6)
