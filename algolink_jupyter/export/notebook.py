"""``algolink export NOTEBOOK -o DIR``: run the notebook headlessly in a fresh kernel (nbclient), then run
``%algolink export DIR`` in that live kernel: the very code path a notebook user takes.

The kernel starts in the notebook's folder, as Jupyter starts it, so the notebook's relative paths and its
saved examples are found. Progress goes to the terminal as each cell finishes; the export cell's own output
(the summary, and the verification log) is passed through line by line as the kernel prints it.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from . import ExportError


def _client_class() -> Any:
    from nbclient import NotebookClient

    class EchoClient(NotebookClient):
        """Passes one cell's printed output on as it arrives."""

        echo_cell: Optional[int] = None
        echo: Callable[[str], None] = staticmethod(lambda text: None)

        def output(self, outs: Any, msg: dict, display_id: Any, cell_index: int) -> Any:
            if cell_index == self.echo_cell and msg["msg_type"] == "stream":
                text = msg["content"]["text"]
                if not text.startswith("UsageError:"):  # the caller reports that one itself
                    self.echo(text)
            return super().output(outs, msg, display_id, cell_index)

    return EchoClient


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def export_notebook(
    notebook: str,
    output: str,
    verify: bool = False,
    allow_unchecked: bool = False,
    timeout: float = 600,
    kernel_name: str = "python3",
    write: Callable[[str], None] = _write,
    port: Optional[int] = None,
    max_state_size: Optional[str] = None,
) -> Path:
    """Execute ``notebook`` in a fresh kernel and export it from there to ``output``; returns the bundle."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(notebook).expanduser()
    if not path.is_file():
        raise ExportError(f"{notebook} does not exist: give the path of a .ipynb notebook.")
    if path.suffix != ".ipynb":
        raise ExportError(f"{notebook} is not a notebook (.ipynb): give the path of a .ipynb file.")
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:
        raise ExportError(
            f"{notebook} cannot be read as a notebook ({_one_line(str(e), 160)}): open it in Jupyter and save it again."
        ) from None
    target = Path(output).expanduser().resolve()
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    line = f"export {shlex.quote(str(target))}" + (" --verify" if verify else "")
    if allow_unchecked:
        line += " --allow-unchecked"
    if port is not None:
        line += f" --port {int(port)}"
    if max_state_size is not None:
        from . import parse_size

        try:
            parse_size(max_state_size)
        except ValueError as e:
            raise ExportError(str(e)) from None
        line += f" --max-state-size {shlex.quote(str(max_state_size))}"
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "_ip = get_ipython()\n"
            'if "algolink_jupyter" not in _ip.extension_manager.loaded:\n'
            '    _ip.run_line_magic("load_ext", "algolink_jupyter")\n'
            f"_ip.run_line_magic({'algolink'!r}, {line!r})"
        )
    )
    export_index = len(nb.cells) - 1
    client = _client_class()(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    client.echo_cell = export_index
    client.echo = write
    count = f"{len(code_cells)} code cell" + ("" if len(code_cells) == 1 else "s")
    write(f"Running {path.name} in a fresh kernel ({count})...\n")
    started = time.perf_counter()
    client.reset_execution_trackers()
    try:
        with client.setup_kernel():
            for n, index in enumerate(code_cells, 1):
                t = time.perf_counter()
                try:
                    client.execute_cell(nb.cells[index], index)
                except CellExecutionError as e:
                    raise ExportError(
                        f"Cell {n} of {path.name} raised {e.ename}: {_one_line(e.evalue, 200)} (fix the "
                        "notebook so that it runs from top to bottom, then export again)."
                    ) from None
                except CellTimeoutError:
                    raise ExportError(
                        f"Cell {n} of {path.name} ran longer than {timeout:.0f} s: give more time with "
                        "--timeout, or make it faster."
                    ) from None
                write(f"  cell {n}/{len(code_cells)} ran in {time.perf_counter() - t:.1f} s\n")
            write(
                f"Ran the notebook in {time.perf_counter() - started:.1f} s; exporting from its kernel.\n"
            )
            cell = nb.cells[export_index]
            client.timeout = (
                None  # verification has its own limits; building an environment takes long
            )
            try:
                client.execute_cell(cell, export_index)
            except CellExecutionError as e:
                raise ExportError(
                    _usage_error(cell) or _one_line(f"{e.ename}: {e.evalue}", 600)
                ) from None
            problem = _usage_error(cell)
            if problem:
                raise ExportError(problem)
    except DeadKernelError:
        raise ExportError(
            f"The kernel running {path.name} died (out of memory?): run the notebook in Jupyter to see why."
        ) from None
    return target


def _usage_error(cell: Any) -> str:
    """The sentence of a UsageError the export cell printed (IPython prints those, it does not raise)."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stderr")
    for line in reversed(text.splitlines()):
        if line.startswith("UsageError:"):
            message = line[len("UsageError:") :].strip()
            prefix = "%algolink export:"
            return message[len(prefix) :].strip() if message.startswith(prefix) else message
    return ""
