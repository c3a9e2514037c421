"""prepare_offline puts Ultralytics' plot fonts in its settings folder once, found without importing matplotlib."""

import subprocess
import sys


def test_a_fresh_settings_folder_gets_the_fonts_and_matplotlib_stays_unloaded(tmp_path):
    code = ("import sys; from streetwatch.detector.offline import prepare_offline; cfg = prepare_offline(); "
            "print(sorted(p.name for p in (cfg / 'Ultralytics').iterdir())); print('matplotlib' in sys.modules)")
    env = {"YOLO_CONFIG_DIR": str(tmp_path / "ultralytics"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["['Arial.Unicode.ttf', 'Arial.ttf']", "False"]
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert again.stdout == out.stdout  # already there: nothing to find, nothing copied over
