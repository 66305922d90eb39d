"""The ``preflab`` command line: every command registered here, explicitly, on one app.

Each command parses its arguments and calls the library function of the same name.
"""

from __future__ import annotations

import typer

from preflab.cli import audit, clean, data, eval, experiment, label, models, review, serve, train

app = typer.Typer(help="preflab: read, audit, clean, label and train on preference feedback.",
                  no_args_is_help=True, rich_markup_mode="markdown",
                  pretty_exceptions_enable=False)
models_app = typer.Typer(help="Offline models: list and prepare them.", no_args_is_help=True)
data_app = typer.Typer(help="Built-in data.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that measure a method against its baselines.",
                        no_args_is_help=True)
experiment_app = typer.Typer(help="End-to-end experiments, one command each.",
                             no_args_is_help=True)
steer_app = typer.Typer(help="Steering vectors: extract from preference pairs, generate with one.",
                        no_args_is_help=True)
review_app = typer.Typer(help="Human review: people judge the pairs the committee doubts.",
                         no_args_is_help=True)

app.command("inspect")(data.inspect_cmd)
app.command("convert")(data.convert)
app.command("audit")(audit.audit)
app.command("clean")(clean.clean)
app.command("label")(label.label_cmd)
app.command("train-rm")(train.train_rm_cmd)
app.command("eval-rm")(eval.eval_rm_cmd)
app.command("split")(data.split)
app.command("serve")(serve.serve)
bench_app.command("noise")(clean.bench_noise)
models_app.command("list")(models.models_list)
models_app.command("prepare")(models.models_prepare)
data_app.command("demo")(data.data_demo)
app.command("sft")(train.sft)
app.command("dpo")(train.dpo)
app.command("bon")(train.bon)
app.command("rl")(train.rl_cmd)
app.command("winrate")(eval.winrate_cmd)
app.command("eval-policy")(eval.eval_policy_cmd)
app.command("eval-harmless")(eval.eval_harmless_cmd)
experiment_app.command("clean-vs-original")(experiment.clean_vs_original_cmd)
app.command("rahf")(train.rahf_cmd)
app.command("hir")(train.hir_cmd)
steer_app.command("extract")(train.steer_extract)
steer_app.command("generate")(eval.steer_generate)
app.command("probe")(eval.probe_cmd)
experiment_app.command("rahf")(experiment.rahf_experiment_cmd)
review_app.command("init")(review.review_init)
review_app.command("add-pairs")(review.review_add_pairs)
review_app.command("add-reviewers")(review.review_add_reviewers)
review_app.command("tokens")(review.review_tokens)
review_app.command("status")(review.review_status)
review_app.command("serve")(review.review_serve)
review_app.command("export")(review.review_export)
experiment_app.command("overoptimization")(experiment.overoptimization_cmd)

app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")
app.add_typer(experiment_app, name="experiment")
app.add_typer(steer_app, name="steer")
app.add_typer(review_app, name="review")


def main() -> None:
    """The console entry point: a usage error (a bad or missing option) is one line on
    stderr and exit 2, as every other error a user must fix."""
    import sys

    import typer.main
    from rich.markup import escape
    from typer.exceptions import TyperException

    from preflab.cli.console import err

    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="preflab", standalone_mode=False)
    except TyperException as e:
        if getattr(e, "exit_code", None) != 2 or not hasattr(e, "format_message"):
            raise
        message = e.format_message()
        if message:  # (no message: a group called bare, its help is already printed)
            ctx = getattr(e, "ctx", None)
            where = ctx.command_path if ctx is not None else "preflab"
            err.print(f"[bold red]error:[/] {escape(message)} (see {where} --help)",
                      highlight=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
