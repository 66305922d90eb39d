"""`preflab label`: AI-feedback labels from a judge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from preflab.cli.console import (
    out,
    pct,
    print_json,
    user_errors,
    warn,
)
from preflab.cli.from_config import (
    ConfigOpt,
    stage_config,
    write_stage_config,
)
from preflab.cli.options import (
    ActorCpusOpt,
    ActorGpusOpt,
    ActorsOpt,
    DeviceOpt,
    ExecutorOpt,
    JsonOpt,
    OnErrorChoice,
    OnErrorOpt,
    RayAddressOpt,
    RejectsOpt,
    SeedOpt,
    ThreadsOpt,
    executor_options,
)
from preflab.label.config import LabelConfig

D = LabelConfig()

Judge = Annotated[str, typer.Option(help="The labeler: a causal-LM preset, folder or hub id, "
                                         "or the URL of an OpenAI-compatible server (e.g. "
                                         "`preflab serve`).")]
Task = Annotated[str, typer.Option(help="helpful, harmless (asks for the MORE harmful "
                                        "reply; the label is inverted) or summary.")]
Preamble = Annotated[str, typer.Option(help="base or detailed.")]
Shots = Annotated[int, typer.Option(help="Exemplars (seeded, drawn from pairs that are not "
                                         "labelled).")]
Template = Annotated[str | None, typer.Option(
    help="TOML file overriding template keys (base, detailed, sample, ending, cot_ending, "
         "invert).")]
Limit = Annotated[int | None, typer.Option(help="Label the first N pairs. [default: all]")]
Sample = Annotated[int | None, typer.Option(
    help="Label a seeded random sample of N pairs (of the first --limit). [default: all; "
         "--grid: 300]")]
Cot = Annotated[bool, typer.Option(help="Chain of thought: the judge explains first "
                                        "(greedy), then is scored.")]
Sc = Annotated[int, typer.Option(help="Self-consistency: sample K rationales (with --cot) "
                                      "and average the distributions.")]
CotTokens = Annotated[int, typer.Option(help="Longest rationale, in tokens.")]
Direct = Annotated[bool, typer.Option(help="Rate each reply 1-10 on its own (expected score "
                                           "on [-1, 1]) instead of comparing.")]
Temperature = Annotated[float, typer.Option(help="Temperature of the --sc rationales.")]
MaxLength = Annotated[int, typer.Option(help="Tokens of a judge prompt.")]
MaxContext = Annotated[int | None, typer.Option(
    min=1, help="Cap on the tokens of the conversation before the replies; it never gets "
                "more than --max-length leaves beside the template and the replies. A longer "
                "one keeps its first instruction (the first paragraph of the first user "
                "turn) and its most recent tokens, the middle replaced by [...].")]
Grid = Annotated[bool, typer.Option(help="Run base/detailed x 0/1/2-shot x without/with CoT "
                                         "on the same pairs and print the alignment table "
                                         "(Table 2 of the paper).")]
GridCot = Annotated[bool, typer.Option("--grid-cot/--no-cot-grid",
                                       help="Include CoT in --grid.")]
Tokenizer = Annotated[str | None, typer.Option(
    help="HTTP judge: the tokenizer that renders its prompts. [default: the served "
         "model's]")]
Concurrency = Annotated[int, typer.Option(help="HTTP judge: requests in flight.")]
Timeout = Annotated[float, typer.Option(help="HTTP judge: seconds per request.")]
Retries = Annotated[int, typer.Option(help="HTTP judge: retries of a failed request.")]
TopLogprobs = Annotated[int, typer.Option(help="HTTP judge: top log-probs asked for (the "
                                               "labels must be among them).")]
WriteData = Annotated[bool, typer.Option(help="Also write labelled.jsonl with p_chosen = the "
                                              "AI label.")]
OutDir = Annotated[Path, typer.Option("--out", help="Output folder.")]


@user_errors
def label_cmd(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help="Preference data to label.")],
    config_file: ConfigOpt = None, judge: Judge = D.judge, task: Task = D.task,
    preamble: Preamble = D.preamble, shots: Shots = D.shots, template: Template = None,
    limit: Limit = None, sample: Sample = None, seed: SeedOpt = D.seed, cot: Cot = D.cot,
    sc: Sc = D.sc, cot_tokens: CotTokens = D.cot_tokens, direct: Direct = D.direct,
    temperature: Temperature = D.temperature, max_length: MaxLength = D.max_length,
    max_context_tokens: MaxContext = D.max_context_tokens, grid: Grid = D.grid,
    grid_cot: GridCot = D.grid_cot, tokenizer: Tokenizer = None,
    concurrency: Concurrency = D.concurrency, timeout: Timeout = D.timeout,
    retries: Retries = D.retries, top_logprobs: TopLogprobs = D.top_logprobs,
    write_data: WriteData = D.write_data, device: DeviceOpt = D.device,
    threads: ThreadsOpt = None, out_dir: OutDir = Path("labels"), as_json: JsonOpt = False,
    on_error: OnErrorOpt = OnErrorChoice.fail, rejects: RejectsOpt = None,
    executor: ExecutorOpt = None, ray_address: RayAddressOpt = None, actors: ActorsOpt = None,
    actor_cpus: ActorCpusOpt = None, actor_gpus: ActorGpusOpt = None,
) -> None:
    """Label pairs with an LLM judge (log-prob soft labels, both orders averaged) and
    measure alignment with the human labels.

    Writes labels.parquet (id, p_ai, each order's P, consistency), summary.json
    (alignment; alignment_chosen_first / _second, each order alone, whose gap is
    position bias; position_consistency, first_position_rate, seconds) and config.toml
    (`--config OUT/config.toml` reruns it). `--on-error skip` skips bad records
    (counted, listed in `--rejects FILE`).

    Example: `preflab label harmless-base-test.jsonl.gz --task harmless --sample 300 --grid`
    """
    config = stage_config(LabelConfig, ctx, config_file)
    reading = {"on_error": on_error.value, "rejects": rejects, "notify": _once(warn),
               "executor": executor_options(executor, ray_address, actors, actor_cpus,
                                            actor_gpus)}
    if config.grid:
        write_stage_config(config, out_dir)  # each grid run writes its own too
        return _grid(data, config, out_dir, as_json, reading)
    from preflab.label.label_pairs import label as label_fn

    summary = label_fn(data, out=out_dir, config=config, **reading)
    _print_summary(summary, config, out_dir)
    if as_json:
        print_json(summary)


def _once(notify: Callable[[str], None]) -> Callable[[str], None]:
    """`notify`, each message once (the grid's runs read the same data)."""
    seen: set[str] = set()

    def once(text: str) -> None:
        if text not in seen:
            seen.add(text)
            notify(text)

    return once


def _grid(data: str, config: LabelConfig, out_dir: Path, as_json: bool,
          reading: dict[str, Any]) -> None:
    from preflab.label.grid import label_grid

    frame = label_grid(data, out=out_dir, config=config, **reading)
    n = config.sample or config.limit or 300
    table = Table("prompt", "alignment", "position consistency", "first position",
                  "failed", title=f"{config.judge} on {n} pairs ({config.task})")
    for _, r in frame.iterrows():
        name = f"{r['preamble'].capitalize()}{' + CoT' if r['cot'] else ''} " \
               f"{r['shots']}-shot"
        table.add_row(name, pct(r["alignment"]), pct(r["position_consistency"]),
                      pct(r["first_position_rate"]), str(r["n_failed"]))
    out.print(table)
    if as_json:
        print(frame.to_json(orient="records"))


def _print_summary(summary: dict[str, Any], config: LabelConfig, out_dir: Path) -> None:
    c = config
    out.print(f"{summary['n_labelled']} of {summary['n_pairs']} pairs labelled by {c.judge} "
              f"({c.task}, {c.preamble}, {c.shots}-shot{', CoT' if c.cot else ''}"
              f"{f', SC {c.sc}' if c.sc > 1 else ''}): alignment with the human labels "
              f"{pct(summary.get('alignment'))}, position consistency "
              f"{pct(summary.get('position_consistency'))}, first position preferred "
              f"{pct(summary.get('first_position_rate'))}")
    if summary.get("alignment_chosen_first") is not None:
        out.print(f"alignment of each order alone: {pct(summary['alignment_chosen_first'])} "
                  f"with the chosen reply shown first, {pct(summary['alignment_chosen_second'])}"
                  " shown second (the gap is position bias; both orders are averaged)")
    _print_truncation(summary)
    if summary["n_failed"]:
        out.print(f"[yellow]{summary['n_failed']} pairs got no label[/]: "
                  + "; ".join(f"{n} x {reason}" for reason, n in summary["failures"].items()))
    out.print(f"labels: {out_dir / 'labels.parquet'}")


def _print_truncation(summary: dict[str, Any]) -> None:
    """How the prompts computed in this run were fitted into the judge, if they were."""
    if summary.get("context_truncated"):
        budget = summary["context_budget"]
        cap = budget["max_context_tokens"]
        out.print(f"[yellow]{summary['context_truncated']} conversations were shortened[/] "
                  f"to what --max-length {budget['max_length']} leaves beside the template "
                  f"and the replies{f' (at most {cap} tokens)' if cap else ''}: kept "
                  f"{escape(summary['context_kept'])}")
    if summary.get("truncated"):
        out.print(f"[yellow]{summary['truncated']} prompts were over --max-length[/] "
                  f"{summary['context_budget']['max_length']} even so and lost their start")
