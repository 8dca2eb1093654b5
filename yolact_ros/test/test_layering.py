"""Dependencies flow one way: the model and inference core know nothing of ROS or training."""

import ast
from pathlib import Path
import subprocess
import sys

PACKAGE = Path(__file__).resolve().parents[1] / 'yolact_ros'
CORE = ('config', 'structures', 'ops', 'modeling', 'postprocess', 'preprocess', 'inference',
        'checkpoint', 'weights', 'results', 'visualize', 'runtime', 'tracking',
        'geometry')
OUTSIDE_CORE = ('ros', 'engine', 'losses', 'data', 'evaluation', 'export', 'cli')
FORBIDDEN_THIRD_PARTY = ('rclpy', 'rosbags', 'mcap', 'tensorboard', 'onnxruntime', 'tensorrt')


def core_files():
    for name in CORE:
        path = PACKAGE / name
        yield from (sorted(path.rglob('*.py')) if path.is_dir() else [path.with_suffix('.py')])


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f'{node.module}.{alias.name}' for alias in node.names)


def test_core_modules_import_nothing_from_ros_training_cli_or_export():
    violations = []
    files = list(core_files())
    assert len(files) >= len(CORE)
    for path in files:
        for module in imported_modules(path):
            parts = module.split('.')
            if parts[0] == 'yolact_ros' and len(parts) > 1 and parts[1] in OUTSIDE_CORE:
                violations.append(f'{path.relative_to(PACKAGE)} imports {module}')
            if parts[0] in FORBIDDEN_THIRD_PARTY or parts[0].endswith('_msgs'):
                violations.append(f'{path.relative_to(PACKAGE)} imports {module}')
    assert not violations, '\n'.join(violations)


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('import rclpy\nfrom yolact_ros.engine import trainer\n')
    assert list(imported_modules(bad)) == ['rclpy', 'yolact_ros.engine',
                                           'yolact_ros.engine.trainer']


def test_importing_the_package_and_core_is_cheap_and_side_effect_free():
    code = ('import sys, yolact_ros, yolact_ros.inference, yolact_ros.ros, yolact_ros.cli.main;'
            'heavy = [m for m in ("rclpy", "cv2", "pycocotools", "onnxruntime", "tensorrt",'
            ' "matplotlib", "rosbags", "tensorboard") if m in sys.modules];'
            'print(",".join(heavy))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == ''
