"""Error rates of `dgbench gate`'s rules on simulated repetitions: power against real changes, false
alarms on noise alone. Pure Python, seeded (dgbench/gate/power.py holds the models and their assumptions).

Each rate is printed with its trial count and a 95% Wilson interval.

    python benchmarks/gate_power.py                   # 4,000 trials per setting
    python benchmarks/gate_power.py --trials 20000 --cv 0.05
"""

from __future__ import annotations

import argparse

from dgbench.gate.power import accuracy_power, timing_rates
from dgbench.stats import wilson_interval


def rate_text(rate: float, trials: int) -> str:
    k = round(rate * trials)
    low, high = wilson_interval(k, trials)
    return f"{100 * rate:5.1f}% [{100 * low:.1f}-{100 * high:.1f}] (n={trials})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=4000, help="simulated baseline/candidate pairs per setting")
    ap.add_argument("--cv", type=float, default=0.03, help="coefficient of variation of one repetition")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    print(f"Timing (latency metric, CV {100 * args.cv:.0f}% per repetition, alpha 0.05, Mann-Whitney U + threshold)")
    print(f"{'reps/side':>9} {'threshold':>9}  {'10% slowdown caught':<32} {'noise alone flagged (regr.)':<32} "
          f"{'noise flagged (improv.)':<32}")
    for reps in (3, 5, 7, 10, 20):
        for threshold in (0.05, 0.10):
            hit = timing_rates(0.10, args.cv, reps, args.trials, args.seed, threshold=threshold)
            null = timing_rates(0.0, args.cv, reps, args.trials, args.seed + 1, threshold=threshold)
            print(f"{reps:>9} {threshold:>9.2f}  {rate_text(hit['regression_rate'], args.trials):<32} "
                  f"{rate_text(null['regression_rate'], args.trials):<32} "
                  f"{rate_text(null['improvement_rate'], args.trials):<32}")

    trials = max(args.trials // 4, 100)
    print("\nAccuracy (200 paired items, baseline 60% correct, net drop exactly 5 points, exact McNemar, alpha 0.05)")
    print("assumption: 10 items broken outright; each baseline-wrong item flips to right with probability r, "
          "matched by as many extra broken items")
    print(f"{'r':>6} {'mean discordant pairs':>22}  caught")
    for reversed_rate in (0.0, 0.025, 0.05, 0.10):
        res = accuracy_power(200, 0.05, reversed_rate, trials, args.seed + 2)
        print(f"{reversed_rate:>6.3f} {res['mean_discordant']:>22.1f}  {rate_text(res['caught_rate'], trials)}")


if __name__ == "__main__":
    main()
