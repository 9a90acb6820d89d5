"""bench.stats: Kaplan-Meier medians, failures, paired ratio intervals and their coverage."""

import math
import subprocess

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from bench import results
from bench import stats as st

BUDGET = 1000


def run(seed, steps=None, **kw):
    """A record as the sweep writes it; ``steps=None``: the target was never reached."""
    r = {
        "seed": seed,
        "steps": BUDGET,
        "steps_to_target": steps,
        "reached": steps is not None,
        "diverged": False,
        "final_train_error": 0.1 if steps is not None else 0.4,
        "final_minibatch_loss": 0.3 if steps is not None else 1.2,
    }
    r.update(kw)
    return r


# --------------------------------------------------------------------------- outcomes


def test_outcomes():
    assert st.outcome(run(0, 100)) == "reached"
    assert st.outcome(run(0)) == "censored"
    # Diverged counts against the run even after it touched the target.
    assert st.outcome(run(0, 100, diverged=True)) == "diverged"
    # Chance error of 10 classes is 0.9; loss of a uniform prediction ln 10 = 2.303.
    assert st.outcome(run(0, final_train_error=0.89)) == "collapsed"
    assert st.outcome(run(0, final_train_error=0.85)) == "censored"
    assert st.outcome(run(0, final_minibatch_loss=2.29)) == "collapsed"
    assert st.outcome(run(0, final_minibatch_loss=2.2)) == "censored"
    assert st.outcome(run(0, final_train_error=0.49), num_classes=2) == "collapsed"
    assert st.outcome(run(0, final_train_error=None, final_minibatch_loss=None)) == "censored"


def test_sample_keeps_failures_in_the_risk_set():
    s = st.sample([run(0, 100), run(1), run(2, diverged=True, steps=300), run(3, 50)])
    np.testing.assert_array_equal(s.time, [100, BUDGET, BUDGET, 50])
    np.testing.assert_array_equal(s.event, [True, False, False, True])
    assert s.outcomes == ("reached", "censored", "diverged", "reached")
    assert (s.count("reached"), s.failed.tolist()) == (2, [False, False, True, False])


# --------------------------------------------------------------------------- Kaplan-Meier


def test_km_median_hand_computed():
    # n = 5: S(100) = 4/5, 200 censored, S(300) = 4/5 * 2/3 = 0.533, S(400) = 0.533 / 2 = 0.267.
    # The median is 400; dropping the censored runs would give 300, and so would counting
    # them as reaching the target at their censoring time.
    t, e = [100, 200, 300, 400, 500], [True, False, True, True, False]
    assert st.km_median(t, e) == 400
    assert st.km_median_batch(np.array([t]), np.array([e]))[0] == 400
    # S = 0.5 exactly from 200 to 300: the midpoint, as np.median of uncensored data.
    assert st.km_median([100, 200, 300, 400], [True] * 4) == 250
    # S stays at 0.5 to the end: not reached.
    assert st.km_median([100, 1000], [True, False]) == math.inf
    assert st.km_median([1000, 1000, 1000], [False] * 3) == math.inf
    assert math.isnan(st.km_median([], []))


def test_failures_count_against_the_configuration():
    # Two runs reach the target, three diverge early: the median is not reached. Dropping the
    # failures, or censoring them at the step they diverged, would give 150.
    records = [run(0, 100), run(1, 200)]
    records += [run(s, diverged=True, divergence_step=30, steps=BUDGET) for s in (2, 3, 4)]
    s = st.sample(records)
    assert st.km_median(s.time, s.event) == math.inf
    records[2] = run(2, 150)
    s = st.sample(records)
    assert st.km_median(s.time, s.event) == 200 and s.count("diverged") == 2


def test_km_median_batch_agrees_with_scipy_ecdf():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 10))
        t = rng.integers(1, 8, n) * 25.0  # ties between events and censorings on purpose
        t += 0.5 * rng.integers(0, 2)  # integer steps and other times take different paths
        e = rng.random(n) < 0.6
        got = st.km_median_batch(t[None], e[None])[0]
        if not e.any():
            assert got == math.inf
            continue
        sf = sps.ecdf(sps.CensoredData(uncensored=t[e], right=t[~e])).sf
        q, p = sf.quantiles, sf.probabilities
        below = q[p < 0.5 - 1e-9]
        want = math.inf if not below.size else (q[p <= 0.5 + 1e-9][0] + below[0]) / 2
        assert got == want, (t, e)


# --------------------------------------------------------------------------- ratios


def _samples(a_steps, b_steps, b_seeds=None):
    a = st.sample([run(i, v) for i, v in enumerate(a_steps)])
    b_seeds = range(len(b_steps)) if b_seeds is None else b_seeds
    b = st.sample([run(i, v) for i, v in zip(b_seeds, b_steps, strict=True)])
    return a, b


def test_paired_when_seeds_match_in_any_order():
    # Each seed makes both sides slow or fast together; the ratio is 3 on every seed.
    k = np.array([1, 2, 4, 8, 1.5, 3, 6, 12])
    a, b = _samples(300 * k, 100 * k)
    r = st.median_ratio(a, b, n_boot=500)
    assert r["paired"] and r["ratio"] == 3.0 and r["ci"] == [3.0, 3.0]
    # The same runs listed in another order are still paired seed by seed.
    order = [3, 0, 7, 1, 6, 2, 5, 4]
    b_shuffled = st.sample([run(i, 100 * k[i]) for i in order])
    assert st.median_ratio(a, b_shuffled, n_boot=500)["ci"] == [3.0, 3.0]
    # Other seeds on one side: resampled independently, the seed effect widens the CI.
    a, b = _samples(300 * k, 100 * k, b_seeds=range(10, 18))
    r = st.median_ratio(a, b, n_boot=500)
    assert not r["paired"] and r["ci"][0] < 1.5 and r["ci"][1] > 6


def test_paired_ci_is_reproducible_and_contains_the_estimate():
    rng = np.random.default_rng(1)
    seed_effect = rng.lognormal(0, 0.4, 8)
    a, b = _samples(
        np.round(600 * seed_effect * rng.lognormal(0, 0.2, 8)),
        np.round(100 * seed_effect * rng.lognormal(0, 0.2, 8)),
    )
    r1 = st.median_ratio(a, b, n_boot=1000, rng=5)
    assert r1 == st.median_ratio(a, b, n_boot=1000, rng=5)
    assert r1["ci"][0] < r1["ratio"] < r1["ci"][1] and r1["ci_bound"] == "exact"
    assert r1["ratio"] == pytest.approx(np.median(a.time) / np.median(b.time))


def test_censored_medians_give_bounds():
    a, b = _samples([None] * 4, [100] * 4)  # a never reaches: the ratio is at least 1000/100
    r = st.median_ratio(a, b, n_boot=100)
    assert (r["ratio"], r["bound"], r["ci"], r["ci_bound"]) == (
        10.0,
        "lower",
        [10.0, 10.0],
        "lower",
    )
    # Not reached (S = 0.5 to the end): the bound counts the censored runs at the budget,
    # np.median([100, 200, 1000, 1000]) = 600.
    a, b = _samples([100, 200, None, None], [100] * 4)
    r = st.median_ratio(a, b, n_boot=100)
    assert (r["ratio"], r["bound"]) == (6.0, "lower")
    # The same stand-in inside the bootstrap.
    res = st.ratio_interval(
        a.time, a.event, b.time, b.event, paired=True, n_boot=10, rng=np.random.default_rng(0)
    )
    assert res["ratio"] == 6.0
    a, b = _samples([None] * 4, [None] * 4)
    r = st.median_ratio(a, b, n_boot=100)
    assert r["ratio"] is None and r["bound"] == r["ci_bound"] == "undetermined"


@pytest.mark.parametrize("paired", [True, False])
def test_bca_matches_scipy_bootstrap_without_censoring(paired):
    # Without censoring the KM median is np.median: scipy.stats.bootstrap's BCa of the same
    # statistic is an independent implementation of the same interval.
    rng = np.random.default_rng(2)
    shared = rng.normal(0, 0.3, 8)
    a = np.exp(6 + shared + rng.normal(0, 0.3, 8))
    b = np.exp(5 + shared + rng.normal(0, 0.3, 8))

    def ratio(x, y, axis=-1):
        return np.median(x, axis=axis) / np.median(y, axis=axis)

    ref = sps.bootstrap(
        (a, b), ratio, paired=paired, method="BCa", n_resamples=20000, random_state=1
    ).confidence_interval
    ones = np.ones(8, bool)
    got = st.ratio_interval(
        a, ones, b, ones, paired=paired, n_boot=20000, rng=np.random.default_rng(3)
    )
    assert got["bca_defined"]
    np.testing.assert_allclose(got["bca"], [ref.low, ref.high], rtol=0.05)


@pytest.mark.parametrize("paired", [True, False])
def test_bca_formula_matches_scipy_on_its_own_resamples(paired):
    # Same bootstrap distribution, same jackknife: BCa's ends must agree to rounding. The
    # statistic is smooth (log of a ratio of means) so the acceleration matters.
    rng = np.random.default_rng(4)
    a, b = rng.lognormal(1.0, 0.8, 9), rng.lognormal(0.0, 0.5, 9)

    def log_ratio(x, y, axis=-1):
        return np.log(np.mean(x, axis=axis) / np.mean(y, axis=axis))

    res = sps.bootstrap(
        (a, b), log_ratio, paired=paired, method="BCa", n_resamples=5000, random_state=0
    )
    boot = np.sort(np.exp(res.bootstrap_distribution))
    drop = [np.delete(np.arange(9), i) for i in range(9)]
    if paired:
        jack = [np.array([a[d].mean() / b[d].mean() for d in drop])]
    else:
        jack = [
            np.array([a[d].mean() / b.mean() for d in drop]),
            np.array([a.mean() / b[d].mean() for d in drop]),
        ]
    p_lo, p_hi = st._bca_probs(boot, np.array(a.mean() / b.mean()), jack, 0.95)
    got = np.percentile(res.bootstrap_distribution, [100 * p_lo, 100 * p_hi])
    ci = res.confidence_interval
    np.testing.assert_allclose(got, [ci.low, ci.high], rtol=1e-9)


def test_bootstrap_ci_one_sample():
    assert st.bootstrap_ci([5.0] * 4) == (5.0, 5.0)
    assert st.bootstrap_ci([]) is None
    lo, hi = st.bootstrap_ci([100, 200, None, None, None], n_boot=500)
    assert lo <= 200 and hi == math.inf  # mostly censored: the upper end is not determined
    lo, hi = st.bootstrap_ci([1.0, 2.0, 3.0, 4.0], "mean", n_boot=4000)
    assert 1.0 <= lo < 2.5 < hi <= 4.0


# --------------------------------------------------------------------------- the sweep summary


def test_summary_counts_failures_and_pairs_shared_seeds():
    from bench import summary as sm

    def recs(act, steps, seeds=None, **kw):
        seeds = range(len(steps)) if seeds is None else seeds
        return [run(s, v, activation=act, lr=0.1, **kw) for s, v in zip(seeds, steps, strict=True)]

    relu = recs("relu", [100, 120, 110, 90, 130, 105])
    tanh = recs("tanh", [300, 330, 310, 280, None, None])
    tanh[4].update(diverged=True)
    tanh[5].update(final_train_error=0.9)  # collapsed to chance
    s = sm.summarize(relu + tanh, n_boot=200)
    (setting,) = s["settings"]
    g = setting["groups"]["tanh"]
    assert (g["n_reached"], g["n_censored"], g["n_failed"]) == (4, 0, 2)
    assert (g["n_diverged"], g["n_collapsed"], g["failed_fraction"]) == (1, 1, 2 / 6)
    assert g["median_steps"] == 320  # KM: (310 + 330) / 2, the failures ranked last
    rp = setting["reference_pair"]
    assert rp["paired"] and rp["ci_method"] == st.DEFAULT_METHOD and rp["n_num"] == 6
    table = sm.format_table(s)
    assert "0/2 (1 diverged, 1 collapsed)" in table and "paired seed bootstrap" in table
    other = recs("tanh", [300, 330, 310, 280, 320, 290], seeds=range(10, 16))
    rp = sm.summarize(relu + other, n_boot=200)["settings"][0]["reference_pair"]
    assert not rp["paired"] and "unpaired" in sm.format_table(sm.summarize(relu + other))


# --------------------------------------------------------------------------- coverage

GRID = 25  # steps to target are measured every eval_every steps
P_FAIL = 0.05
SIGMA_SEED, SIGMA_RUN = 0.3, 0.25
MEDIAN_A, MEDIAN_B = 750.0, 250.0  # a: ~26% of runs do not reach the target in BUDGET


def true_median(m: float, sigma: float, p_fail: float) -> float:
    """Median of the population of steps to target: log-normal(log m, sigma) times measured on
    the evaluation grid (the first grid point at or after the time), with probability p_fail
    of a failure (+inf): the smallest grid point g with (1 - p_fail) Phi((ln g - ln m)/sigma)
    >= 1/2."""
    g = np.arange(GRID, 100 * BUDGET, GRID, dtype=np.float64)
    cdf = (1 - p_fail) * special.ndtr((np.log(g) - math.log(m)) / sigma)
    return float(g[np.argmax(cdf >= 0.5)])


def simulate(rng, n_exp, n, shared=True):
    """Steps to target of two configurations on n seeds, n_exp times: log-normal with a seed
    effect shared by both sides (``shared``) plus a per-run effect, on the evaluation grid,
    censored at the budget, failures with probability P_FAIL. Returns ((t, event, fail) of a,
    of b)."""
    seed_a = rng.normal(0, SIGMA_SEED, (n_exp, n))
    seed_b = seed_a if shared else rng.normal(0, SIGMA_SEED, (n_exp, n))
    out = []
    for m, s in ((MEDIAN_A, seed_a), (MEDIAN_B, seed_b)):
        t = np.ceil(np.exp(math.log(m) + s + rng.normal(0, SIGMA_RUN, (n_exp, n))) / GRID) * GRID
        fail = rng.random((n_exp, n)) < P_FAIL
        out.append((t, (t <= BUDGET) & ~fail, fail))
    return out


def records_of(t, event, fail, order):
    """The runs as the sweep records them (seeds listed in ``order``): a failure diverged or
    collapsed to chance (alternately); an unreached run ends censored at the budget."""
    out = []
    for i in order:
        if event[i]:
            out.append(run(int(i), int(t[i])))
        elif fail[i] and i % 2:
            out.append(run(int(i), diverged=True, divergence_step=int(min(t[i], BUDGET)) // 2))
        elif fail[i]:
            out.append(run(int(i), final_train_error=0.9, final_minibatch_loss=2.31))
        else:
            out.append(run(int(i)))
    return out


TRUE_RATIO = true_median(MEDIAN_A, math.hypot(SIGMA_SEED, SIGMA_RUN), P_FAIL) / true_median(
    MEDIAN_B, math.hypot(SIGMA_SEED, SIGMA_RUN), P_FAIL
)


def test_true_ratio_by_sampling():
    # The formula against a large sample of the same population (failures as +inf).
    (ta, ea, _), (tb, eb, _) = simulate(np.random.default_rng(9), 1, 400_000)
    big = np.median(np.where(ea, ta, np.inf)) / np.median(np.where(eb, tb, np.inf))
    assert big == TRUE_RATIO


def test_coverage_of_the_paired_ratio_ci():
    """The whole estimator (records -> outcomes -> KM medians -> paired bootstrap CI) on
    simulated experiments with 8 seeds, the claims' measurement size: the 95% CI of the ratio
    of medians must cover the population ratio in >= 92% of 600 experiments, miss it on
    neither side in more than 4.5% (a biased median, e.g. one that drops censored runs, misses
    on one side), and the default method must be the one closer to 95%. Also prints the
    coverage table of the README (``pytest -s``) for 3, 5 and 8 seeds, paired and with
    independent seeds."""
    n_exp, n_boot = 600, 2000
    rng = np.random.default_rng(2026)
    (ta, ea, fa), (tb, eb, fb) = simulate(rng, n_exp, 8)
    covered = {m: 0 for m in st.METHODS}
    low = high = 0  # default method: the interval lies below / above the truth
    for i in range(n_exp):
        a = st.sample(records_of(ta[i], ea[i], fa[i], range(8)))
        b = st.sample(records_of(tb[i], eb[i], fb[i], rng.permutation(8)))  # order differs
        r = st.median_ratio(a, b, n_boot=n_boot, rng=i)
        assert r["paired"] and r["ci"] == r["ci_by_method"][st.DEFAULT_METHOD]
        for m, (lo, hi) in r["ci_by_method"].items():
            covered[m] += lo <= TRUE_RATIO <= hi
        low += r["ci"][1] < TRUE_RATIO
        high += r["ci"][0] > TRUE_RATIO
    cov = {m: c / n_exp for m, c in covered.items()}
    other = next(m for m in st.METHODS if m != st.DEFAULT_METHOD)
    print(
        f"\nend to end, 8 paired seeds, true ratio {TRUE_RATIO:.3f}: coverage {cov}; "
        f"{st.DEFAULT_METHOD} below / above the truth {low / n_exp:.3f} / {high / n_exp:.3f}"
    )
    assert cov[st.DEFAULT_METHOD] >= 0.92
    assert max(low, high) / n_exp <= 0.045
    assert abs(cov[st.DEFAULT_METHOD] - 0.95) <= abs(cov[other] - 0.95)

    print("| seeds | resampling | percentile | BCa |\n|---|---|---|---|")
    for n in (3, 5, 8):
        for shared in (True, False):
            (ta, ea, _), (tb, eb, _) = simulate(rng, 400, n, shared)
            res = st.ratio_interval(ta, ea, tb, eb, paired=shared, n_boot=500, rng=rng)
            c = [
                np.mean((res[m][:, 0] <= TRUE_RATIO) & (TRUE_RATIO <= res[m][:, 1]))
                for m in st.METHODS
            ]
            how = "paired" if shared else "independent seeds"
            print(f"| {n} | {how} | {c[0]:.3f} | {c[1]:.3f} |")


# --------------------------------------------------------------------------- provenance


def _git(repo, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_git_info_dirty_with_untracked_code_or_config(tmp_path):
    assert results.git_info(tmp_path) == (None, None)  # not a repository
    for d in ("activations", "bench", "docs"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "a.py").write_text("x = 1\n")
    (tmp_path / ".gitignore").write_text("*.pyc\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    commit, dirty = results.git_info(tmp_path)
    assert len(commit) == 40 and dirty is False

    (tmp_path / "bench" / "cache.pyc").write_text("")  # ignored
    (tmp_path / "docs" / "notes.md").write_text("")  # untracked, but not code
    (tmp_path / "my.toml").write_text("steps = 10\n")  # untracked config
    assert results.git_info(tmp_path)[1] is False
    assert results.git_info(tmp_path, config=tmp_path / "my.toml")[1] is True
    assert results.git_info(tmp_path / "docs", config="/elsewhere/x.toml")[1] is False

    (tmp_path / "activations" / "new.py").write_text("")  # untracked code
    assert results.git_info(tmp_path / "docs")[1] is True
    (tmp_path / "activations" / "new.py").unlink()
    (tmp_path / "docs" / "a.py").write_text("x = 2\n")  # modified, but not code
    assert results.git_info(tmp_path)[1] is False
    (tmp_path / "bench" / "a.py").write_text("x = 2\n")  # modified code
    assert results.git_info(tmp_path)[1] is True
