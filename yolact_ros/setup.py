"""yolact_ros: ROS 2 package (ament_python) and pip-installable distribution."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'yolact_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE + '/config', glob('config/*')),
        # The manifest and bundled demo model live at the repository root (weights/).
        ('share/' + PACKAGE + '/weights',
         glob('../weights/*.json') + glob('../weights/*.safetensors')),
    ],
    python_requires='>=3.10',
    install_requires=[
        'setuptools',
        'numpy>=1.24',
        'torch>=2.1',
        'torchvision>=0.16',
        'opencv-python-headless>=4.8',
        'pycocotools>=2.0.7',
        'safetensors>=0.4',
        'pyyaml>=6',
        'tqdm>=4.60',
        'matplotlib>=3.7',
        'scipy>=1.10',
    ],
    extras_require={
        'train': ['tensorboard>=2.14'],
        'export': ['onnx>=1.16', 'onnxruntime>=1.18', 'openvino>=2024.4', 'nncf>=2.14'],
        'bag': ['rosbags>=0.10', 'mcap>=1.1', 'mcap-ros2-support>=0.5'],
        # Tracking metrics (benchmarks/tracking.py); trackeval (HOTA) is installed by
        # scripts/setup.sh with --no-deps: its wheel requires opencv-python, which would
        # replace the headless OpenCV's cv2 (and needs libGL).
        'bench': ['motmetrics>=1.4', 'pandas>=1.5'],
        'test': ['pytest>=7', 'flake8>=7', 'flake8-quotes', 'flake8-import-order',
                 'flake8-docstrings', 'flake8-builtins', 'flake8-comprehensions',
                 'flake8-class-newline', 'flake8-deprecated', 'flake8-blind-except'],
    },
    zip_safe=True,
    maintainer='yolact_ros developers',
    maintainer_email='yolact-ros@example.com',
    description='Real-time YOLACT instance segmentation for ROS 2, with training and evaluation',
    license='MIT',
    entry_points={
        'console_scripts': [
            'yolact = yolact_ros.cli.main:main',
            'segment_node = yolact_ros.ros.node:main',
        ],
    },
)
