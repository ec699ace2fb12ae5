"""A bench cell's log catches what the run and its libraries write, at the file-descriptor
level, and gives the terminal back afterwards."""

import os
import subprocess
import sys

from teachloop.runs.bench.cell_log import captured_output


def test_output_from_python_c_level_and_child_processes_goes_to_the_log(tmp_path, capfd):
    log_path = tmp_path / "logs" / "cell.log"
    with captured_output(log_path, "started") as log:
        print("python stdout line")
        print("python stderr line", file=sys.stderr)
        os.write(2, b"raw fd 2 line\n")  # what C extensions and vLLM's engine do
        subprocess.run([sys.executable, "-c", "print('child process line')"], check=True)
        log.write("console line\n")
    print("back on the terminal")

    text = log_path.read_text()
    for line in ("python stdout line", "python stderr line", "raw fd 2 line", "child process line", "console line"):
        assert line in text, text
    assert text.startswith("== ") and text.splitlines()[0].endswith(" started")
    terminal = capfd.readouterr()
    assert "back on the terminal" in terminal.out
    assert "line" not in terminal.out.replace("back on the terminal", "") and "line" not in terminal.err

    with captured_output(log_path, "resumed"):
        print("second attempt")
    headers = [line for line in log_path.read_text().splitlines() if line.startswith("== ")]
    assert [h.split()[-1] for h in headers] == ["started", "resumed"]
    assert log_path.read_text().endswith("second attempt\n")
