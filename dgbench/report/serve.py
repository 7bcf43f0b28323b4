"""Serve points in reports: the end-of-run table and the crossover under load. Imports no torch.

Crossover under load (DESIGN.md "crossover batch/concurrency", here over concurrency): for a diffusion
endpoint and an AR endpoint measured at the same concurrencies (and request rate), the concurrency at which
the AR endpoint's aggregate output tok/s (or goodput) reaches the diffusion endpoint's, linearly
interpolated between the two measured concurrencies that bracket the sign change of AR - diffusion.
Each point is one load run, so the crossover carries no interval; the bracketing points are given instead.
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from dgbench.report.fmt import num

CROSSOVER_METRICS = ("output_tok_s", "goodput_rps")


def _pct(point: dict, key: str, q: str, scale: float = 1e3) -> str:
    p = ((point.get("serve") or {}).get("percentiles") or {}).get(key)
    return num(p.get(q), scale) if p and p.get(q) is not None else "-"


SERVE_HEADER = ["endpoint", "paradigm", "conc.", "rate/s", "ok/sent", "out tok/s", "per-user tok/s p50", "req/s",
                "goodput req/s", "TTFT ms p50/p99", "TPOT ms p50/p99", "chunk gap ms p50/p99", "tok/chunk p50",
                "tokens from"]


def serve_rows(points: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The serve table as text cells (the console and the HTML report print the same rows)."""
    rows = []
    for p in points:
        params = p.get("params", {})
        head = [str(p.get("decoder", "?")), str(p.get("paradigm", "?")), str(params.get("concurrency")),
                str(params.get("request_rate"))]
        s = p.get("serve") or {}
        if p.get("status") != "ok":
            err = (p.get("error") or {}).get("message", "?")
            rows.append(head + [f"0/{s.get('requests', '?')}", f"FAILED: {err}"] + [""] * 8)
            continue
        rows.append(head + [f"{s['succeeded']}/{s['requests']}", num(s.get("output_tok_s")),
                            _pct(p, "per_user_tok_s", "p50", 1.0), num(s.get("request_throughput_rps")),
                            num(s.get("goodput_rps")),
                            f"{_pct(p, 'ttft_s', 'p50')}/{_pct(p, 'ttft_s', 'p99')}",
                            f"{_pct(p, 'tpot_s', 'p50')}/{_pct(p, 'tpot_s', 'p99')}",
                            f"{_pct(p, 'chunk_gap_s', 'p50')}/{_pct(p, 'chunk_gap_s', 'p99')}",
                            _pct(p, "chunk_tokens", "p50", 1.0), ", ".join(s.get("token_source") or {}) or "-"])
    return SERVE_HEADER, rows


def serve_table(points: list[dict], title: str = "") -> Table:
    header, rows = serve_rows(points)
    table = Table(title=title)
    for col in header:
        table.add_column(col, justify="left" if col in ("endpoint", "paradigm", "tokens from") else "right")
    for row in rows:
        table.add_row(*[escape(c) for c in row])
    return table


def serve_footer(points: list[dict]) -> str:
    failed = {}
    for p in points:
        for cause, n in ((p.get("serve") or {}).get("errors") or {}).items():
            failed[cause] = failed.get(cause, 0) + n
    lines = ["out tok/s: output tokens of successful requests / point duration (aggregate); per-user tok/s: a "
             "request's tokens / its e2e; goodput: requests within every SLO / duration; TTFT: send to first "
             "chunk (diffusion: first committed canvas); TPOT: (e2e - TTFT) / (tokens - 1); chunk gap: between "
             "content chunks (diffusion: canvases, AR: tokens); percentiles over requests (chunks pooled)."]
    if failed:
        lines.append("failed requests by cause: " + ", ".join(f"{escape(k)}: {v}" for k, v in failed.items()))
    for line in crossover_lines(points):
        lines.append(escape(line))
    return "\n".join(lines)


def _series(points: list[dict], endpoint: str, rate, metric: str) -> dict:
    out = {}
    for p in points:
        params = p.get("params", {})
        if (p.get("status") == "ok" and p.get("decoder") == endpoint and params.get("request_rate") == rate
                and isinstance(params.get("concurrency"), int)):
            value = (p.get("serve") or {}).get(metric)
            if value is not None:
                out[params["concurrency"]] = value
    return out


def crossover(points: list[dict], metric: str = "output_tok_s") -> list[dict]:
    """One entry per (diffusion endpoint, AR endpoint, request rate) measured at two or more shared concurrencies."""
    serve = [p for p in points if p.get("serve") is not None]
    by_paradigm = {}
    for p in serve:
        by_paradigm.setdefault(p.get("paradigm"), set()).add(p.get("decoder"))
    rates = sorted({p.get("params", {}).get("request_rate") for p in serve}, key=str)
    found = []
    for diff_ep in sorted(by_paradigm.get("diffusion", ())):
        for ar_ep in sorted(by_paradigm.get("autoregressive", ())):
            for rate in rates:
                d, a = _series(serve, diff_ep, rate, metric), _series(serve, ar_ep, rate, metric)
                shared = sorted(set(d) & set(a))
                if len(shared) < 2:
                    continue
                gaps = [(c, a[c] - d[c]) for c in shared]
                entry = {"diffusion": diff_ep, "autoregressive": ar_ep, "request_rate": rate, "metric": metric,
                         "concurrencies": shared, "diffusion_values": [d[c] for c in shared],
                         "ar_values": [a[c] for c in shared], "crossover": None, "bracket": None}
                if gaps[0][1] >= 0:
                    entry["verdict"] = f"AR at or above diffusion from the lowest concurrency measured ({shared[0]})"
                else:
                    for (c0, g0), (c1, g1) in zip(gaps, gaps[1:]):
                        if g1 >= 0:
                            entry["crossover"] = c0 + (c1 - c0) * (-g0) / (g1 - g0)
                            entry["bracket"] = [c0, c1]
                            entry["verdict"] = (f"AR overtakes diffusion at concurrency ~{entry['crossover']:.3g} "
                                                f"(between {c0} and {c1}; interpolated, no interval: one run "
                                                "per point)")
                            break
                    else:
                        entry["verdict"] = f"diffusion stays ahead through concurrency {shared[-1]}"
                flips = sum((g0 >= 0) != (g1 >= 0) for (_, g0), (_, g1) in zip(gaps, gaps[1:]))
                if flips > (0 if gaps[0][1] >= 0 else 1):
                    entry["verdict"] += (f"; the difference changes sign {flips} times over the sweep (noisy or "
                                         "not monotonic: measure with more requests per point)")
                entry["sign_changes"] = flips
                found.append(entry)
    return found


def crossover_lines(points: list[dict]) -> list[str]:
    lines = []
    for metric in CROSSOVER_METRICS:
        for e in crossover(points, metric):
            lines.append(f"crossover ({metric}, rate {e['request_rate']}): {e['autoregressive']} vs "
                         f"{e['diffusion']}: {e['verdict']}")
    return lines
