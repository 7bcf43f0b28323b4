"""The gate's error rates on simulated repetitions (seeded): it must catch real changes and ignore noise.

Rates printed by `python benchmarks/gate_power.py` (more trials, more settings); here enough trials that a
95% requirement is not met by luck: at 3,000 trials the standard error of a rate near 95% is 0.4 points.
"""

from dgbench.gate.power import accuracy_power, timing_rates


def test_ten_percent_slowdown_at_cv_three_percent_is_caught():
    # 7 repetitions a side, the gate's default alpha 0.05 and a 5% threshold (a threshold AT the
    # effect size catches only half: the measured median exceeds it half the time).
    rates = timing_rates(slowdown=0.10, cv=0.03, reps=7, trials=3000, seed=1, threshold=0.05)
    assert rates["regression_rate"] >= 0.95, rates
    assert rates["improvement_rate"] == 0.0


def test_noise_alone_is_rarely_flagged():
    for reps in (5, 10):
        rates = timing_rates(slowdown=0.0, cv=0.03, reps=reps, trials=3000, seed=2, threshold=0.05)
        assert rates["regression_rate"] <= 0.05 and rates["improvement_rate"] <= 0.05, rates


def test_five_point_accuracy_drop_on_200_items_is_caught():
    # Discordance assumption: 10 items broken outright, and each baseline-wrong item (~80) flipped to
    # right with probability 2.5% (about 2), matched by as many extra broken items: ~14 discordant pairs.
    rates = accuracy_power(items=200, drop_points=0.05, reversed_rate=0.025, trials=500, seed=3)
    assert rates["caught_rate"] >= 0.95, rates
    # The same drop hidden in heavy churn (~26 discordant pairs) is genuinely hard to tell from chance.
    churn = accuracy_power(items=200, drop_points=0.05, reversed_rate=0.10, trials=500, seed=3)
    assert churn["caught_rate"] < rates["caught_rate"]
