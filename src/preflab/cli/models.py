"""`preflab models`: the offline models."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from preflab.cli.console import (
    out,
    print_json,
    user_errors,
)
from preflab.cli.options import JsonOpt


def models_list(as_json: JsonOpt = False) -> None:
    """List the offline models, whether installed and prepared.

    Example: `preflab models list`
    """
    from preflab.models.offline import OFFLINE_MODELS, is_prepared, prepared_dir

    rows = [{"name": p.name, "kind": p.kind, "package": p.package,
             "installed": p.package_version() is not None,
             "prepared": p.package_version() is not None and is_prepared(p.name),
             "path": str(prepared_dir(p.name)) if p.gguf else "(inside the package)",
             "install": p.install, "license": p.license, "description": p.description}
            for p in OFFLINE_MODELS.values()]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "kind", "installed", "prepared", "license", "install")
    for r in rows:
        table.add_row(r["name"], r["kind"], "yes" if r["installed"] else "no",
                      "yes" if r["prepared"] else "no", r["license"], r["install"])
    out.print(table)


@user_errors
def models_prepare(
    name: Annotated[str, typer.Argument(help="Offline model name (see `preflab models list`).")],
    force: Annotated[bool, typer.Option(help="Convert again even if cached.")] = False,
) -> None:
    """Convert an offline model once into the cache ($PREFLAB_CACHE), then time a load from it.

    Example: `preflab models prepare smollm2-135m-instruct`
    """
    import time

    from preflab.models.offline import OFFLINE_MODELS, load_causal_lm, load_pretrained, prepare

    if name not in OFFLINE_MODELS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(OFFLINE_MODELS)}")
    started = time.perf_counter()
    path = prepare(name, force=force)
    prepared = time.perf_counter() - started
    report: dict[str, Any] = {"preset": name, "path": str(path),
                              "prepare_seconds": round(prepared, 2)}
    if OFFLINE_MODELS[name].kind == "causal-lm":
        # Time the imports (once per process, paid by any transformers program)
        # apart from loading the weights out of the cache.
        started = time.perf_counter()
        from transformers import AutoConfig, AutoModelForCausalLM

        AutoModelForCausalLM._model_mapping[type(load_pretrained(AutoConfig, path))]
        report["import_seconds"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        load_causal_lm(name)
        report["load_seconds"] = round(time.perf_counter() - started, 2)
    print_json(report)
