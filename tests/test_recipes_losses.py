"""The recipes' pure loss functions: values, the closed-form gradient, the cached-teacher KL."""

import math

import pytest
import torch
import torch.nn.functional as F

from factbench.recipes import losses


def _random(n=6, v=11, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    student = (torch.randn(n, v, generator=g, dtype=dtype) * 2).requires_grad_(True)
    teacher = torch.randn(n, v, generator=g, dtype=dtype) * 2
    targets = torch.randint(0, v, (n,), generator=g)
    return student, teacher, targets


def test_known_value_on_a_two_token_vocabulary():
    # Student uniform; teacher at tau = 0.5 puts 3/4 on token 0. CE = ln 2,
    # KL(p || uniform) = 0.75 ln 1.5 + 0.25 ln 0.5, loss = CE + lam * tau^2 * KL.
    tau, lam = 0.5, 1.0
    student = torch.zeros(1, 2, dtype=torch.float64)
    teacher = torch.tensor([[tau * math.log(3), 0.0]], dtype=torch.float64)
    out = losses.self_distillation_loss(student, torch.tensor([0]), student, teacher, lam=lam, tau=tau)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert out.ce.item() == pytest.approx(math.log(2))
    assert out.kl.item() == pytest.approx(kl)
    assert out.total.item() == pytest.approx(math.log(2) + lam * tau ** 2 * kl)


def test_cross_entropy_is_the_mean_over_positions():
    student, _, targets = _random()
    assert losses.answer_cross_entropy(student, targets).item() == pytest.approx(
        F.cross_entropy(student, targets).item())


def test_kl_is_forward_kl_at_temperature():
    student, teacher, _ = _random()
    tau = 0.7
    p = torch.softmax(teacher / tau, -1)
    q = torch.softmax(student / tau, -1)
    expected = (p * (p.log() - q.log())).sum(-1)
    torch.testing.assert_close(losses.distillation_kl(student, teacher, tau), expected)
    assert losses.distillation_kl(teacher, teacher, tau).abs().max().item() < 1e-12


@pytest.mark.parametrize(("lam", "tau"), [(1.0, 0.5), (0.5, 1.0), (2.0, 2.0), (0.0, 0.5)])
def test_gradient_matches_the_closed_form(lam, tau):
    """d/dz of the mean loss = (q_1 - onehot(y) + lam * tau * (q_tau - p_T)) / N, per position."""
    student, teacher, targets = _random()
    loss = losses.self_distillation_loss(student, targets, student, teacher, lam=lam, tau=tau).total
    (grad,) = torch.autograd.grad(loss, student)
    z = student.detach()
    closed = (torch.softmax(z, -1) - F.one_hot(targets, z.shape[-1]).double()
              + lam * tau * (torch.softmax(z / tau, -1) - torch.softmax(teacher / tau, -1))) / z.shape[0]
    torch.testing.assert_close(grad, closed, rtol=1e-10, atol=1e-12)


def test_autograd_gradient_agrees_with_finite_differences():
    student, teacher, targets = _random(n=3, v=5)
    assert torch.autograd.gradcheck(
        lambda z: losses.self_distillation_loss(z, targets, z, teacher, lam=1.0, tau=0.5).total, (student,))


def test_kl_on_other_positions_than_the_cross_entropy():
    """kl_on=all: the KL mean runs over its own (more) positions, the CE over the answers."""
    student, teacher, targets = _random(n=8)
    ce_rows = torch.tensor([2, 3, 7])
    out = losses.self_distillation_loss(student[ce_rows], targets[ce_rows], student, teacher, lam=1.0, tau=0.5)
    expected = (F.cross_entropy(student[ce_rows], targets[ce_rows])
                + 0.25 * losses.distillation_kl(student, teacher, 0.5).mean())
    torch.testing.assert_close(out.total, expected)


def test_no_positions_gives_zero_not_nan():
    empty = torch.zeros(0, 7, requires_grad=True)
    out = losses.self_distillation_loss(empty, torch.zeros(0, dtype=torch.long), empty, torch.zeros(0, 7),
                                        lam=1.0, tau=0.5)
    assert out.total.item() == 0.0
    out.total.backward()


# ---- cached teacher (top-k + "other" bucket) -----------------------------------------------------

def test_topk_with_the_whole_vocabulary_is_the_exact_loss():
    student, teacher, targets = _random()
    cached = losses.teacher_topk(teacher, 0.5, k=teacher.shape[-1])
    exact = losses.self_distillation_loss(student, targets, student, teacher, lam=1.0, tau=0.5).total
    approx = losses.self_distillation_loss(student, targets, student, cached, lam=1.0, tau=0.5).total
    g_exact, = torch.autograd.grad(exact, student)
    g_approx, = torch.autograd.grad(approx, student)
    torch.testing.assert_close(approx, exact)
    torch.testing.assert_close(g_approx, g_exact)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_topk_kl_is_a_lower_bound_that_vanishes_at_the_teacher(k):
    student, teacher, _ = _random(v=12)
    cached = losses.teacher_topk(teacher, 0.5, k)
    coarse = losses.topk_distillation_kl(student, cached, 0.5)
    full = losses.distillation_kl(student, teacher, 0.5)
    assert (coarse >= -1e-12).all() and (coarse <= full + 1e-12).all()
    assert losses.topk_distillation_kl(teacher, cached, 0.5).abs().max().item() < 1e-10
    # the bucket holds exactly the teacher's tail mass
    p = torch.softmax(teacher / 0.5, -1)
    tail = 1 - p.gather(-1, cached.ids).sum(-1)
    torch.testing.assert_close(cached.other_logprob.exp(), tail)


def test_topk_charges_student_mass_outside_the_teachers_top_k():
    teacher = torch.tensor([[5.0, 4.0, -5.0, -5.0]], dtype=torch.float64)
    cached = losses.teacher_topk(teacher, 1.0, k=2)
    near = torch.tensor([[5.0, 4.0, -5.0, -5.0]], dtype=torch.float64)
    tail_heavy = torch.tensor([[5.0, 4.0, 6.0, -5.0]], dtype=torch.float64)
    assert losses.topk_distillation_kl(tail_heavy, cached, 1.0) > losses.topk_distillation_kl(near, cached, 1.0) + 1


def test_tiny_tail_mass_stays_finite_in_float32():
    teacher = torch.tensor([[40.0, 0.0, 0.0, 0.0]])  # tail mass ~ 3e-35 at tau = 0.5
    cached = losses.teacher_topk(teacher, 0.5, k=1)
    student = torch.zeros(1, 4, requires_grad=True)
    kl = losses.topk_distillation_kl(student, cached, 0.5)
    kl.sum().backward()
    assert torch.isfinite(kl).all() and torch.isfinite(student.grad).all()


# ---- L2 anchor --------------------------------------------------------------------------------------

def test_l2_anchor_value_and_gradient():
    p = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.5, 2.5], dtype=torch.float64)
    penalty = losses.l2_anchor_penalty([p], [a])
    assert penalty.item() == pytest.approx(0.5)
    penalty.backward()
    torch.testing.assert_close(p.grad, 2 * (p.detach() - a))
