"""The serve scenario under the Scenario contract: points are endpoint x concurrency x request rate, and
measuring one loads no model (the endpoint decodes); see point.py and loadgen.py."""

from __future__ import annotations

from dgbench.scenarios.base import MeasureContext, Scenario, register_scenario
from dgbench.scenarios.serve.config import SECTIONS, validate_serve
from dgbench.scenarios.serve.point import ServePoint, expand_serve, run_serve_point


@register_scenario
class ServeScenario(Scenario):
    name = "serve"
    suite_names = ("serve",)
    loads_model = False
    suite_sections = SECTIONS
    progress_unit = "request"
    telemetry_window = "rep"   # one window per point: the load run

    def validate(self, suite: dict, loc) -> None:
        validate_serve(suite, loc)

    def expand(self, suite: dict) -> list[ServePoint]:
        return expand_serve(suite)

    def measure(self, decoder, point: ServePoint, spec, ctx: MeasureContext) -> dict:
        return run_serve_point(point, ctx.suite, ctx.seed, ctx.on_request)

    def dry_run(self, suite: dict, points: list, console) -> None:
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=f"suite {suite['name']}: {len(points)} points (endpoint x concurrency x request rate)")
        for col in ("point id", "endpoint", "url", "model", "params"):
            table.add_column(col)
        for pt in points:
            table.add_row(*[escape(str(c)) for c in (pt.point_id, pt.decoder, pt.endpoint["url"], pt.model,
                                                     " ".join(f"{k}={v}" for k, v in pt.params.items()))])
        console.print(table)
        load = suite["load"]
        per_point = (f"{load['num_requests']} requests" if load["num_requests"] is not None
                     else f"requests for {load['duration_s']:g} s (at most {load['max_requests']})")
        console.print(f"Each point sends {per_point} plus {load['warmup_requests']} warmup to its endpoint; dgbench "
                      f"runs no forward passes itself (the server does); each request is bounded by "
                      f"load.timeout_s={load['timeout_s']:g} s.")
        console.print("Nothing was run.")

    def console_summary(self, points: list[dict], title: str) -> list:
        from dgbench.report.serve import serve_footer, serve_table

        return [serve_table(points, title=title), serve_footer(points)]
