"""`openaml demo mnist`: the whole Amazon ML MNIST workflow against the embedded service."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import click

from openaml.cli.paths import NonEmptyPath
from openaml.settings import Settings

BUCKET = "mnist-demo"


def example_dir() -> Path:
    """examples/mnist of this checkout (the demo runs from a source tree)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "examples" / "mnist"
        if (candidate / "workflow.py").exists():
            return candidate
    raise click.ClickException("examples/mnist not found: run the demo from an OpenAML checkout")


def openaml_command() -> str:
    """This installation's `openaml` script, as a path that works from here (e.g. .venv/bin/openaml)."""
    script = Path(sys.executable).parent / "openaml"
    relative = os.path.relpath(script)
    return relative if not relative.startswith("..") else str(script)


def input_uri(role: str, path: Path) -> str:
    """Where the demo uploads its `role` (train, test) file: a folder per role, so that files
    of the same name do not replace each other; the name is kept (the service reads `.gz` as gzip)."""
    return f"s3://{BUCKET}/input/{role}/{path.name}"


@click.group()
def demo() -> None:
    """Runnable demonstrations."""


@demo.command()
@click.option("--train", "train_path", type=NonEmptyPath(path_type=Path, exists=True, dir_okay=False),
              default=None, help="Kaggle-format labeled CSV (default: the bundled 7,000 rows).")
@click.option("--test", "test_path", type=NonEmptyPath(path_type=Path, exists=True, dir_okay=False),
              default=None, help="Kaggle-format unlabeled CSV (default: the bundled 3,000 rows).")
@click.option("--test-labels", type=NonEmptyPath(path_type=Path, exists=True, dir_okay=False),
              default=None, help="True labels of the test rows, to report accuracy.")
@click.option("--data-dir", type=NonEmptyPath(path_type=Path), default=Path("openaml-demo"),
              show_default=True, help="Data dir of the embedded server.")
@click.option("--max-passes", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="sgd.maxPasses of the model, 1-10000.")
def mnist(train_path: Path | None, test_path: Path | None, test_labels: Path | None,
          data_dir: Path, max_passes: int) -> None:
    """Train, evaluate and batch-predict MNIST digits through the API, then check the output."""
    from openaml.server.embedded import running_server

    examples = example_dir()
    bundled = train_path is None and test_path is None
    train_path = train_path or examples / "data" / "train.csv.gz"
    test_path = test_path or examples / "data" / "test.csv.gz"
    if test_labels is None and bundled:
        test_labels = examples / "data" / "test_labels.csv"
    started = time.monotonic()
    settings = Settings(data_dir=data_dir, port=0).resolved()
    with contextlib.ExitStack() as stack:
        try:
            app = stack.enter_context(running_server(settings))
        except (ValueError, OSError) as exc:  # ConfigurationError is a ValueError
            raise click.ClickException(f"cannot start the embedded server in {data_dir}: {exc}") from None
        url = app.settings.base_url
        click.echo(f"OpenAML is serving at {url} (data dir {app.settings.data_dir})")
        store = app.context.objects
        uris = {}
        for name, path in (("train", train_path), ("test", test_path)):
            uris[name] = input_uri(name, path)
            with store.open_write(uris[name]) as out, path.open("rb") as source:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
        for name in ("train.schema.json", "batch.schema.json", "recipe.json"):
            store.write_bytes(f"s3://{BUCKET}/config/{name}", (examples / name).read_bytes())
        command = [
            sys.executable, str(examples / "workflow.py"), "--endpoint-url", url,
            "--train-uri", uris["train"], "--test-uri", uris["test"],
            "--train-schema-uri", f"s3://{BUCKET}/config/train.schema.json",
            "--batch-schema-uri", f"s3://{BUCKET}/config/batch.schema.json",
            "--recipe-uri", f"s3://{BUCKET}/config/recipe.json",
            "--output-uri", f"s3://{BUCKET}/output/",
            "--local-store", str(app.settings.objects_root), "--max-passes", str(max_passes),
        ]
        if test_labels is not None:
            command += ["--test-labels", str(test_labels)]
        # The embedded server accepts any credentials on loopback; supply some if none are set.
        env = {"AWS_ACCESS_KEY_ID": "openaml-demo", "AWS_SECRET_ACCESS_KEY": "openaml-demo",
               **os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
        result = subprocess.run(command, check=False, env=env)
        if result.returncode != 0:
            raise click.ClickException(f"the MNIST workflow failed (exit status {result.returncode}): see above")
        click.echo(f"output files: {app.settings.objects_root / BUCKET / 'output'}")
        click.echo(f"to browse the results in the console, run `make serve DATA_DIR={data_dir}` "
                   f"(or `{openaml_command()} serve --data-dir {data_dir}`) and open "
                   "http://127.0.0.1:8080/console/")
    click.echo(f"demo finished in {time.monotonic() - started:.1f} s")
