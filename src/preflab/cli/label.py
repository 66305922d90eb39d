"""`preflab label`: AI-feedback labels from a judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from preflab.cli.common import out, pct, user_errors


@user_errors
def label_cmd(
    data: Annotated[str, typer.Argument(help="Preference data to label.")],
    judge: Annotated[str, typer.Option(help="The labeler: a causal-LM preset, folder or "
                                            "hub id, or the URL of an OpenAI-compatible "
                                            "server (e.g. `preflab serve`).")
                     ] = "smollm2-135m-instruct",
    task: Annotated[str, typer.Option(help="helpful, harmless (asks for the MORE harmful "
                                           "reply; the label is inverted) or summary.")
                    ] = "helpful",
    preamble: Annotated[str, typer.Option(help="base or detailed.")] = "base",
    shots: Annotated[int, typer.Option(help="Exemplars (seeded, drawn from pairs that are "
                                            "not labelled).")] = 0,
    template: Annotated[Path | None, typer.Option(
        help="TOML file overriding template keys (base, detailed, sample, ending, "
             "cot_ending, invert).")] = None,
    limit: Annotated[int | None, typer.Option(help="Label a seeded sample of N pairs.")
                     ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample, the exemplars and sampled "
                                           "rationales.")] = 0,
    cot: Annotated[bool, typer.Option(help="Chain of thought: the judge explains first "
                                           "(greedy), then is scored.")] = False,
    sc: Annotated[int, typer.Option(help="Self-consistency: sample K rationales (with "
                                         "--cot) and average the distributions.")] = 1,
    cot_tokens: Annotated[int, typer.Option(help="Longest rationale, in tokens.")] = 128,
    direct: Annotated[bool, typer.Option(help="Rate each reply 1-10 on its own (expected "
                                              "score on [-1, 1]) instead of comparing.")
                      ] = False,
    temperature: Annotated[float, typer.Option(help="Temperature of the --sc rationales.")
                           ] = 1.0,
    grid: Annotated[bool, typer.Option(help="Run base/detailed x 0/1/2-shot x without/with "
                                            "CoT on the sample and print the alignment "
                                            "table (Table 2 of the paper).")] = False,
    no_cot_grid: Annotated[bool, typer.Option("--no-cot-grid", help="Leave CoT out of "
                                              "--grid.")] = False,
    tokenizer: Annotated[str | None, typer.Option(
        help="HTTP judge: the tokenizer that renders its prompts (default: the served "
             "model's).")] = None,
    concurrency: Annotated[int, typer.Option(help="HTTP judge: requests in flight.")] = 4,
    timeout: Annotated[float, typer.Option(help="HTTP judge: seconds per request.")] = 120.0,
    retries: Annotated[int, typer.Option(help="HTTP judge: retries of a failed request.")
                       ] = 3,
    top_logprobs: Annotated[int, typer.Option(help="HTTP judge: top log-probs asked for "
                                                   "(the labels must be among them).")] = 20,
    write_data: Annotated[bool, typer.Option(
        help="Also write labelled.jsonl with p_chosen = the AI label.")] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("labels"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary (or grid) as "
                                                         "JSON on the last line.")] = False,
) -> None:
    """Label pairs with an LLM judge (log-prob soft labels, both orders averaged) and
    measure alignment with the human labels.

    Writes labels.parquet (id, p_ai, each order's P, consistency) and summary.json
    (alignment, position_consistency, first_position_rate, seconds).

    Example: `preflab label harmless-base-test.jsonl.gz --task harmless --limit 300 --grid`
    """
    from preflab.engine.make_judge import is_url
    from preflab.label.label_pairs import label as label_fn
    from preflab.label.label_pairs import label_grid

    http = {"tokenizer": tokenizer, "concurrency": concurrency, "timeout": timeout,
            "retries": retries, "top_logprobs": top_logprobs} if is_url(judge) else None
    common = dict(task=task, seed=seed, template=template, cot_tokens=cot_tokens,
                  temperature=temperature, sc=sc, http=http)
    if grid:
        frame = label_grid(data, judge, out=out_dir, limit=limit or 300, cot=not no_cot_grid,
                           **common)
        table = Table("prompt", "alignment", "position consistency", "first position",
                      "failed", title=f"{judge} on {limit or 300} pairs ({task})")
        for _, r in frame.iterrows():
            name = f"{r['preamble'].capitalize()}{' + CoT' if r['cot'] else ''} " \
                   f"{r['shots']}-shot"
            table.add_row(name, pct(r["alignment"]), pct(r["position_consistency"]),
                          pct(r["first_position_rate"]), str(r["n_failed"]))
        out.print(table)
        if as_json:
            print(frame.to_json(orient="records"))
        return
    summary = label_fn(data, judge, out=out_dir, preamble=preamble, shots=shots, limit=limit,
                       cot=cot, write_data=write_data, direct=direct, **common)
    out.print(f"{summary['n_labelled']} of {summary['n_pairs']} pairs labelled by {judge} "
              f"({task}, {preamble}, {shots}-shot{', CoT' if cot else ''}"
              f"{f', SC {sc}' if sc > 1 else ''}): alignment with the human labels "
              f"{pct(summary.get('alignment'))}, position consistency "
              f"{pct(summary.get('position_consistency'))}, first position preferred "
              f"{pct(summary.get('first_position_rate'))}")
    if summary["n_failed"]:
        out.print(f"[yellow]{summary['n_failed']} pairs got no label[/]: "
                  + "; ".join(f"{n} x {reason}" for reason, n in summary["failures"].items()))
    out.print(f"labels: {out_dir / 'labels.parquet'}")
    if as_json:
        print(json.dumps(summary))
