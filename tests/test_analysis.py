"""The answer a run gives (dgbench/analysis): speedup pairs, equal accuracy, AUP, crossover, seeds, percentiles.

Point records here are built the way points.jsonl stores them (plain dicts with reps, quality, correct,
item_ids); the end-to-end tests in test_answer_end_to_end.py run real models.
"""

from __future__ import annotations

import math
import re

import pytest

from dgbench.analysis import crossover, equal_accuracy, headline, paired, percentiles, seeds, summary
from dgbench.analysis.points import op_label


def point(decoder, paradigm, tok_s, batch=1, gen=64, prompt=32, e2e=None, ttft=None, pid=None, **knobs):
    params = {"batch_size": batch, "gen_length": gen, "prompt_length": prompt, **knobs}
    e2e = e2e or [gen * batch / t for t in tok_s]
    return {"point_id": pid or f"{decoder}-{batch}-{gen}-{knobs}", "decoder": decoder, "paradigm": paradigm,
            "status": "ok", "model": "m", "engine": "e", "params": params,
            "reps": {"committed_tok_s": list(tok_s), "e2e_s": e2e, "ttft_s": ttft or [x / 4 for x in e2e],
                     "useful_tokens": [gen * batch] * len(tok_s)}}


def quality_point(decoder, paradigm, correct, tok_s, tpf=1.0, **knobs):
    n = len(correct)
    p = point(decoder, paradigm, tok_s, gen=20, prompt=0, **knobs)
    p["params"] = {"task": "sudoku", "gen_length": 20, **knobs}
    p["task"] = "sudoku"
    p["correct"] = list(correct)
    p["item_ids"] = [f"i{k}" for k in range(n)]
    p["quality"] = {"accuracy": sum(correct) / n, "n": n, "low": 0.0, "high": 1.0}
    p["reps"]["tokens_per_forward"] = [tpf] * len(tok_s)
    return p


LINE = re.compile(r"^(.+?) vs (.+?) \(fastest AR\): (\d+\.\d\d)x \[(\d+\.\d\d)\u2013(\d+\.\d\d)\] committed tok/s")


def test_headline_uses_fastest_ar_including_speculative_rows():
    pts = [point("diffusion", "diffusion", [200, 210, 190, 205, 195]),
           point("ar", "autoregressive", [100, 104, 98, 101, 99]),
           point("ar-spec", "autoregressive", [150, 155, 148, 152, 149], assistant_model="draft"),
           point("diffusion", "diffusion", [50, 52], gen=256)]   # no AR at gen 256: no pair there
    pairs = headline.pairs(pts, seed=3)
    assert len(pairs) == 1
    r = pairs[0]
    assert r["reference"] == "ar-spec assistant_model=draft"
    assert r["speedup"]["ratio"] == pytest.approx(200 / 150)
    assert r["speedup"]["low"] <= r["speedup"]["ratio"] <= r["speedup"]["high"]
    assert r["e2e_ratio"]["ratio"] == pytest.approx(150 / 200, rel=1e-6)
    line = headline.pair_line(r)
    m = LINE.match(line)
    assert m and m.group(1) == "diffusion" and m.group(2) == "ar-spec assistant_model=draft" and m.group(3) == "1.33", line
    assert "at batch=1 prompt=32 gen=64" in line and "n=5/5" in line
    assert headline.pairs(pts, seed=3) == pairs      # seeded bootstrap: the same interval every time


def test_headline_reports_why_there_is_no_pair():
    assert "No measured AR point" in headline.why_no_pairs([point("d", "diffusion", [1, 2])])
    assert "different batch" in headline.why_no_pairs([point("d", "diffusion", [1, 2]),
                                                       point("a", "autoregressive", [1, 2], gen=32)])


def test_paired_difference_does_not_collapse_when_decoders_agree():
    same = [True] * 18 + [False] * 2
    d = paired.paired_difference(same, same)
    assert d["diff"] == 0 and d["low"] < 0 < d["high"]
    worse = paired.paired_difference([False] * 10 + [True] * 10, [True] * 20)
    assert worse["diff"] == pytest.approx(-0.5) and worse["high"] < 0


def _sweep(ar_correct, diffusion):
    pts = [quality_point("ar", "autoregressive", ar_correct, [50] * 3)]
    for threshold, correct, speed, tpf in diffusion:
        pts.append(quality_point("diffusion", "diffusion", correct, [speed] * 3, tpf=tpf, threshold=threshold))
    return pts


def test_equal_accuracy_picks_fastest_non_inferior_point():
    n = 400
    ar = [True] * 360 + [False] * 40                               # 90%
    pts = _sweep(ar, [(0.9, ar, 80, 2.0),                          # same items right: non-inferior
                      (0.7, ar[:350] + [False] * 50, 120, 3.0),    # 10 more wrong (-2.5 pp): not within 2 pp
                      (0.5, [False] * n, 300, 6.0)])               # collapses
    (r,) = equal_accuracy.non_inferiority(pts, margin=0.02)
    assert r["reference"] == "ar" and r["best"]["point"] == "diffusion threshold=0.9"
    assert r["best"]["speedup"] == pytest.approx(80 / 50)
    assert [t["non_inferior"] for t in r["tested"]] == [True, False, False]
    assert "fastest non-inferior diffusion point diffusion threshold=0.9" in equal_accuracy.non_inferiority_line(r)
    # A wide margin admits the faster threshold; MLPerf's relative rule (99% of 90% = 0.9 pp) does not.
    assert equal_accuracy.non_inferiority(pts, margin=0.30)[0]["best"]["point"] == "diffusion threshold=0.7"
    mlperf = equal_accuracy.non_inferiority(pts, margin=0.99, kind="relative")[0]
    assert mlperf["tolerance"] == pytest.approx(0.009) and mlperf["best"]["point"] == "diffusion threshold=0.9"


def test_equal_accuracy_none_within_margin():
    ar = [True] * 40
    pts = _sweep(ar, [(0.5, [False] * 40, 300, 6.0)])
    (r,) = equal_accuracy.non_inferiority(pts)
    assert r["best"] is None and "none within margin" in equal_accuracy.non_inferiority_line(r)


def test_aup_matches_hao_ai_lab_formula():
    # Hand-computed: y_max = 90, alpha 3. Points (1, 90), (2, 88), (4, 80); y_min = 85, so (4, 80) is dropped.
    w88 = math.exp(-3 * (1 - 88 / 90))
    expected = 1 * 90 + (2 - 1) * (88 * w88 + 90 * 1.0) / 2
    assert equal_accuracy.aup([4, 1, 2], [80, 90, 88], 90) == pytest.approx(expected)
    assert equal_accuracy.aup([1.0], [70.0], 90) == pytest.approx(70.0)   # AR: one token per forward


def test_aup_table_per_decoder_curve():
    ar = [True] * 9 + [False]
    pts = _sweep(ar, [(0.9, ar, 80, 2.0), (0.5, ar, 200, 5.0)])
    rows = {r["decoder"]: r for r in equal_accuracy.aup_table(pts)}
    assert rows["ar"]["aup"] == pytest.approx(90.0)
    assert rows["diffusion"]["aup"] == pytest.approx(2 * 90 + 3 * 90)
    assert [c["point"] for c in rows["diffusion"]["curve"]] == ["diffusion threshold=0.9", "diffusion threshold=0.5"]


def test_crossover_interpolates_in_log_batch():
    assert crossover.crossing([1, 2, 4], [0.5, 0.8, 1.6]) == pytest.approx(2 ** (1 + (-math.log(0.8)) /
                                                                              (math.log(1.6) - math.log(0.8))))
    assert crossover.crossing([1, 2], [0.5, 0.9]) is None

    def pts(ratios):
        out = []
        for b, r in zip([1, 2, 4, 8], ratios):
            out.append(point("diffusion", "diffusion", [100 * b, 101 * b, 99 * b, 100 * b], batch=b))
            out.append(point("ar", "autoregressive", [100 * b * r, 101 * b * r, 99 * b * r, 100 * b * r], batch=b))
        return out

    (r,) = crossover.crossovers(pts([0.25, 0.5, 2.0, 4.0]), seed=1)
    assert 2 < r["crossover_batch"] < 4 and r["low"] <= r["crossover_batch"] <= r["high"]
    assert "AR overtakes at batch" in crossover.crossover_line(r)
    (none,) = crossover.crossovers(pts([0.2, 0.3, 0.4, 0.5]))
    assert "no crossover in the swept range" in crossover.crossover_line(none)
    (ahead,) = crossover.crossovers(pts([2, 3, 4, 5]))
    assert "AR is ahead at every swept batch" in crossover.crossover_line(ahead)
    (reverse,) = crossover.crossovers(pts([4.0, 2.0, 0.5, 0.25]))   # AR leads at batch 1, diffusion takes over
    assert reverse["direction"] == "diffusion_overtakes" and 2 < reverse["crossover_batch"] < 4
    assert "the diffusion point overtakes AR at batch" in crossover.crossover_line(reverse)
    users = crossover.per_user_rows(pts([1, 1, 1, 1]))
    assert {(u["batch"], u["per_user"]) for u in users if u["decoder"] == "diffusion"} == {(1, 100), (2, 100),
                                                                                           (4, 100), (8, 100)}


def test_seed_groups_mean_and_between_seed_spread():
    pts = [quality_point("diffusion", "diffusion", c, [t] * 3, seed=s)
           for s, c, t in [(0, [True, True, False, False], 10), (1, [True, True, True, False], 12),
                           (2, [True, False, False, False], 14)]]
    (g,) = seeds.seed_groups(pts)
    assert g["point"] == "diffusion" and g["n_seeds"] == 3
    assert g["accuracy_mean"] == pytest.approx(0.5) and g["accuracy_sd"] == pytest.approx(0.25)
    assert g["tok_s_mean"] == pytest.approx(12) and g["tok_s_sd"] == pytest.approx(2)
    assert "n=3 seeds" in seeds.seed_line(g)
    assert op_label(pts[1]) == "diffusion seed=1"


def test_p99_is_flagged_below_100_values():
    p = point("ar", "autoregressive", list(range(1, 51)))
    t = percentiles.tail(p, "committed_tok_s")
    assert t["n"] == 50 and t["p50"] == pytest.approx(25.5) and t["p99_is_max"] and 49 < t["p99"] <= 50
    big = percentiles.tail(point("ar", "autoregressive", list(range(1, 201))), "committed_tok_s")
    assert not big["p99_is_max"]


def test_summary_json_is_strict_json():
    import json

    pts = [point("diffusion", "diffusion", [2, 2]), point("ar", "autoregressive", [1, 1])]
    data = summary.to_json(summary.analyze(pts))
    json.dumps(data, allow_nan=False)
    assert data["lines"][0].startswith("diffusion vs ar (fastest AR): 2.00x [2.00\u20132.00]")
    assert {d["name"] for d in data["definitions"]} >= {"speedup (diffusion vs AR)", "AUP (accuracy under parallelism)",
                                                        "crossover batch", "speed at equal accuracy"}
