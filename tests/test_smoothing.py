"""Per-track smoothing on synthetic probability streams."""
import numpy as np
import pytest

from classifier.smoothing import ProbabilitySmoother

A = np.array([0.9, 0.05, 0.05], np.float32)
B = np.array([0.05, 0.9, 0.05], np.float32)


def run_step(fps: float, half_life: float, t_end: float = 3.0, t_change: float = 1.0):
    s = ProbabilitySmoother(half_life_s=half_life, margin=0.0)
    out = {}
    for i in range(int(round(t_end * fps)) + 1):
        t = i / fps
        sm, _ = s.update(1, A if t < t_change else B, t)
        out[round(t, 6)] = sm
    return out


def crossover(fps: float, half_life: float) -> float:
    """First time the smoothed probability of B exceeds that of A."""
    for t, sm in sorted(run_step(fps, half_life).items()):
        if sm[1] > sm[0]:
            return t
    raise AssertionError("never crossed")


@pytest.mark.parametrize("half_life", [0.25, 0.5, 1.0])
def test_same_timing_at_5_and_30_fps(half_life):
    """Time-based EMA: the label follows a change after the same time at 5 and
    30 fps (to within one 5 fps frame); a per-frame EMA would be 6x slower at 5 fps."""
    slow, fast = crossover(5, half_life), crossover(30, half_life)
    assert abs(slow - fast) <= 1 / 5 + 1e-6
    # continuous-time answer: B overtakes A when A's weight falls to ~1/2
    assert 1.0 + 0.5 * half_life <= fast <= 1.0 + 1.5 * half_life
    # and the steady states agree exactly at shared instants
    a, b = run_step(5, half_life), run_step(30, half_life)
    np.testing.assert_allclose(a[0.6], b[0.6], atol=1e-6)
    # after the change, A's weight decays as 0.5 ** (elapsed / half_life) from the
    # last frame before the change, at either rate
    for curve, last_a in ((a, 0.8), (b, 29 / 30)):
        w = 0.5 ** ((3.0 - last_a) / half_life)
        np.testing.assert_allclose(curve[3.0], w * A + (1 - w) * B, atol=1e-4)


def test_half_life_means_half_way():
    """One half-life after the change the smoothed vector is half way from A to B."""
    out = run_step(30, 0.5)
    # the first B frame is at t=1.0; half a second later, A's weight is 0.5 ** (0.5/0.5)
    # relative to the state just before t=1.0
    before = out[round(29 / 30, 6)]
    at = out[1.5]
    w_old = 0.5 ** ((1.5 - 29 / 30) / 0.5)
    np.testing.assert_allclose(at, w_old * before + (1 - w_old) * B, atol=1e-4)


def test_hysteresis_stops_flicker_between_close_classes():
    rng = np.random.default_rng(0)
    s = ProbabilitySmoother(half_life_s=0.3, margin=0.1)
    raw_labels, shown = [], []
    for i in range(300):  # 10 s at 30 fps, two classes neck and neck
        a = 0.45 + rng.uniform(-0.05, 0.05)
        p = np.array([a, 0.9 - a, 0.1], np.float32)
        raw_labels.append(int(p.argmax()))
        shown.append(s.update(7, p, i / 30)[1])
    flips_raw = int(np.sum(np.diff(raw_labels) != 0))
    flips_shown = int(np.sum(np.diff(shown) != 0))
    assert flips_raw > 50
    assert flips_shown <= 1


def test_real_change_is_followed():
    s = ProbabilitySmoother(half_life_s=0.25, margin=0.1)
    labels = [s.update(1, A if i < 30 else B, i / 30)[1] for i in range(60)]
    switch = labels.index(1)
    assert labels[:30] == [0] * 30 and all(l == 1 for l in labels[switch:])
    assert (switch - 30) / 30 < 0.5  # follows within half a second


def test_state_per_track_and_drop():
    s = ProbabilitySmoother(0.5)
    s.update(1, A, 0.0)
    s.update(2, B, 0.0)
    sm1, _ = s.update(1, A, 0.1)
    np.testing.assert_allclose(sm1, A, atol=1e-6)  # track 2 does not leak into track 1
    s.drop([1])
    assert s.track_ids == [2]
    sm, lab = s.update(1, B, 0.2)  # a new track 1 starts fresh
    np.testing.assert_allclose(sm, B, atol=1e-6)
    assert lab == 1


def test_off_and_repeated_timestamps():
    s = ProbabilitySmoother(half_life_s=0.0)
    s.update(1, A, 0.0)
    np.testing.assert_allclose(s.update(1, B, 0.1)[0], B, atol=1e-6)  # 0 = no smoothing
    s2 = ProbabilitySmoother(half_life_s=0.5)
    s2.update(1, A, 1.0)
    np.testing.assert_allclose(s2.update(1, B, 1.0)[0], A, atol=1e-6)  # same instant: no time passed
    with pytest.raises(ValueError):
        ProbabilitySmoother(half_life_s=-1)
