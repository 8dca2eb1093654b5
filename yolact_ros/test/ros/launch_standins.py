"""Minimal stand-ins for ``launch`` and ``launch_ros``, which are not installable from PyPI.

Enough to evaluate ``segment.launch.py`` the way ``ros2 launch`` does and to turn its nodes into
command lines.
"""

import importlib.util
import os
from pathlib import Path
import sys
import types
from typing import Dict, List, Optional


class Context:
    """The launch context: evaluated launch arguments."""

    def __init__(self, arguments: Dict[str, str]) -> None:
        self.launch_configurations = dict(arguments)


def perform(value, context: Context) -> str:
    """Evaluate a substitution, a list of them, or a plain string."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ''.join(perform(v, context) for v in value)
    return value.perform(context)


class LaunchConfiguration:
    """The value of a launch argument."""

    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: Context) -> str:
        return context.launch_configurations[self.name]


class PathJoinSubstitution:
    """Join evaluated parts with the path separator."""

    def __init__(self, parts) -> None:
        self.parts = parts

    def perform(self, context: Context) -> str:
        return os.path.join(*(perform(part, context) for part in self.parts))


class FindPackageShare:
    """A package's share directory (from :attr:`shares`)."""

    shares: Dict[str, str] = {}

    def __init__(self, package: str) -> None:
        self.package = package

    def perform(self, context: Context) -> str:
        return self.shares[self.package]


class DeclareLaunchArgument:
    """A launch argument with its default."""

    def __init__(self, name: str, default_value=None, description: str = '') -> None:
        self.name, self.default_value, self.description = name, default_value, description


class OpaqueFunction:
    """A function called with the context, returning actions."""

    def __init__(self, function, args=None, kwargs=None) -> None:
        self.function, self.args, self.kwargs = function, args or [], kwargs or {}


class LaunchDescription:
    """The entities of a launch file."""

    def __init__(self, entities) -> None:
        self.entities = list(entities)


class Node:
    """A node action; keeps its keyword arguments."""

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs


def install(monkeypatch, shares: Dict[str, str]) -> None:
    """Register the stand-in modules in ``sys.modules`` for the duration of a test."""
    FindPackageShare.shares = dict(shares)
    modules = {
        'launch': {'LaunchDescription': LaunchDescription},
        'launch.actions': {'DeclareLaunchArgument': DeclareLaunchArgument,
                           'OpaqueFunction': OpaqueFunction},
        'launch.substitutions': {'LaunchConfiguration': LaunchConfiguration,
                                 'PathJoinSubstitution': PathJoinSubstitution},
        'launch_ros': {},
        'launch_ros.actions': {'Node': Node},
        'launch_ros.substitutions': {'FindPackageShare': FindPackageShare},
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)


def run_launch_file(path: Path, arguments: Optional[Dict[str, str]] = None) -> List[Node]:
    """Import a launch file, apply ``arguments`` over the defaults, return the nodes it starts.

    Unknown argument names raise, as ``ros2 launch`` does.
    """
    spec = importlib.util.spec_from_file_location('launch_file_under_test', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = [e for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    arguments = dict(arguments or {})
    unknown = set(arguments) - {d.name for d in declared}
    if unknown:
        raise ValueError(f'unknown launch arguments {sorted(unknown)}')
    context = Context({})
    for declaration in declared:
        context.launch_configurations[declaration.name] = arguments.get(
            declaration.name, perform(declaration.default_value, context))
    nodes: List[Node] = []
    for entity in description.entities:
        if isinstance(entity, OpaqueFunction):
            nodes += entity.function(context, *entity.args, **entity.kwargs)
        elif isinstance(entity, Node):
            nodes.append(entity)
    return nodes


def command_line(node: Node, executable: str) -> List[str]:
    """Return the command ``launch_ros`` would run for ``node`` (dict parameters as ``-p``)."""
    kwargs = node.kwargs
    command = [executable, '--ros-args']
    if kwargs.get('name'):
        command += ['-r', f'__node:={kwargs["name"]}']
    if kwargs.get('namespace'):
        namespace = kwargs['namespace']
        command += ['-r', f'__ns:={namespace if namespace.startswith("/") else "/" + namespace}']
    for parameters in kwargs.get('parameters', []):
        if isinstance(parameters, dict):
            for name, value in parameters.items():
                command += ['-p', f'{name}:={value}']
        else:
            command += ['--params-file', str(parameters)]
    for source, target in kwargs.get('remappings', []):
        command += ['-r', f'{source}:={target}']
    return command
