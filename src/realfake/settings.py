"""One definition per setting: a stage's settings dataclass declares each field with :func:`setting`, and the rest
is made from that.

A field's type is its annotation and its default the field's default; :func:`setting` adds an :class:`Option`
(help, allowed values, bounds, how it is written on the command line) as the field's metadata. From it:

- :func:`check_settings`: the dataclass's own check of the allowed values and bounds (its ``__post_init__``
  calls it, then checks what involves several fields);
- :func:`add_arguments` and :func:`settings_from_arguments`: the ``realfake <stage>`` flags
  (:mod:`realfake.cli`), each with its help, default and allowed values;
- :func:`command_line`: the flags the workflow's rules pass, from a config section
  (``workflow/rules/arguments.smk``), and :func:`from_config`: a config value as the field's value, for the
  checks at planning (``workflow/rules/checks.smk``).

The workflow's schema (``workflow/schemas/config.schema.yaml``) repeats the defaults, allowed values and bounds
for Snakemake's validation; ``tests/test_settings.py`` checks that it agrees with the dataclasses, key by key.
Imports nothing heavy: planning uses it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from realfake.errors import RealfakeError

METADATA_KEY = "realfake"


@dataclasses.dataclass(frozen=True)
class Option:
    """How one setting is checked and written.

    ``help``: what it does, for ``--help`` (its default and bounds are added there). ``choices``: the values a
    text setting allows (of a tuple setting: each item's; the class checks those itself). ``minimum``,
    ``maximum``, ``exclusive_minimum``, ``exclusive_maximum``: a number's bounds, as JSON Schema names them;
    ``unit``: the numbers' unit, for the messages ("a positive number of seconds"). ``flag``: the command-line
    flag (default ``--`` and the name with dashes); ``command_line=False``: none. ``metavar``: the flag's value
    in ``--help``. ``parse``: flag text -> value, for a value that is not an int, float, str or Path (for a
    setting with choices, applied to the chosen text); ``text``: value -> flag text, its inverse. ``nargs="+"``:
    one flag, several values; ``repeatable``: the flag given once per value (both make a tuple).
    """

    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    unit: str | None = None
    flag: str | None = None
    command_line: bool = True
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None
    text: Callable[[Any], str] | None = None
    nargs: str | None = None
    repeatable: bool = False

    def bounds(self) -> str:
        """The bounds in words: "at least 1", "between 128 and 4096 pixels", "above 0 and below 1", "positive",
        "a positive number of seconds"; "" for none."""
        if self.exclusive_minimum == 0 and self.maximum is None and self.exclusive_maximum is None:
            return f"a positive number of {self.unit}" if self.unit else "positive"
        unit = f" {self.unit}" if self.unit else ""
        if self.minimum is not None and self.maximum is not None:
            return f"between {self.minimum:g} and {self.maximum:g}{unit}"
        words = [
            f"{name} {bound:g}"
            for name, bound in (
                ("at least", self.minimum),
                ("above", self.exclusive_minimum),
                ("at most", self.maximum),
                ("below", self.exclusive_maximum),
            )
            if bound is not None
        ]
        return " and ".join(words) + unit if words else ""

    def problem(self, value) -> str | None:
        """What ``value`` must be instead ("one of a, b", "a finite number", "at least 1"); None when it may be.
        A non-finite number is told its bounds when they name a unit ("a positive number of seconds")."""
        if isinstance(value, str) and self.choices is not None and value not in self.choices:
            return f"one of {', '.join(self.choices)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.bounds():
            return None
        if not math.isfinite(value):
            return self.bounds() if self.unit else "a finite number"
        within = (
            (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.exclusive_minimum is None or value > self.exclusive_minimum)
            and (self.exclusive_maximum is None or value < self.exclusive_maximum)
        )
        return None if within else self.bounds()


def setting(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING, **option):
    """A settings dataclass field: ``dataclasses.field`` with an :class:`Option` (``help`` and ``option``'s
    keywords) as its metadata."""
    metadata = {METADATA_KEY: Option(help=help, **option)}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def option_of(field: dataclasses.Field) -> Option | None:
    """The :class:`Option` of a settings field; None for a field that is not a setting (or a nested settings
    dataclass, whose own fields are)."""
    return field.metadata.get(METADATA_KEY)


def flag_of(name: str, option: Option) -> str:
    """The command-line flag of setting ``name``: ``option.flag``, or ``--`` and the name with dashes."""
    return option.flag or "--" + name.replace("_", "-")


def spaced(name: str) -> str:
    """A setting's name as the messages of some stages write it: "test_fraction" -> "test fraction"."""
    return name.replace("_", " ")


def check_settings(settings, describe: Callable[[str], str] = str) -> None:
    """RealfakeError for the first setting of ``settings`` (a settings dataclass) outside its choices or bounds:
    "<describe(name)> must be <what>, got <value>"."""
    for field in dataclasses.fields(settings):
        option = option_of(field)
        value = getattr(settings, field.name)
        problem = option.problem(value) if option else None
        if problem:
            shown = repr(value) if isinstance(value, str) else value
            raise RealfakeError(f"{describe(field.name)} must be {problem}, got {shown}")


def nested_settings(settings_class) -> dict[str, type]:
    """{field name: dataclass} of the fields of ``settings_class`` that hold settings dataclasses of their own
    (``EvaluateSettings.statistics``): their settings are flags of the same command."""
    hints = typing.get_type_hints(settings_class)
    return {
        field.name: hints[field.name]
        for field in dataclasses.fields(settings_class)
        if option_of(field) is None and dataclasses.is_dataclass(hints[field.name])
    }


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _scalar_type(hint):
    """int, float, str or Path, from an annotation such as ``Path | None``; None for anything else."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(argument for argument in typing.get_args(hint) if argument is not type(None))
    return hint if hint in (int, float, str, Path) else None


def default_text(option: Option, value) -> str:
    """A setting's value as ``--help`` shows it: "none", "on"/"off", or as it is written on the command line."""
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return option.text(value) if option.text else str(value)


def _is_tuple(hint) -> bool:
    """Whether a setting's annotation is a tuple (``tuple[str, ...]``, ``tuple[Path, ...] | None``)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_is_tuple(argument) for argument in typing.get_args(hint))
    return typing.get_origin(hint) is tuple


def _help(option: Option, default, hint) -> str:
    notes = ["required" if default is dataclasses.MISSING else f"default: {default_text(option, default)}"]
    if option.choices is not None and _is_tuple(hint):
        notes.append(f"each of {', '.join(option.choices)}")
    if option.bounds():
        notes.append(option.bounds())
    return f"{option.help} ({'; '.join(notes)})".replace("%", "%%")


def _argument(field: dataclasses.Field, option: Option, hint) -> dict:
    """``add_argument`` keywords of one setting. A setting with choices (not a tuple's) is chosen by name."""
    default = _default(field)
    keywords = {"dest": field.name, "help": _help(option, default, hint)}
    if isinstance(default, bool):
        return {**keywords, "default": default, "action": argparse.BooleanOptionalAction if default else "store_true"}
    keywords.update(metavar=option.metavar, default=default)
    if default is dataclasses.MISSING:
        keywords.update(required=True, default=None)
    if option.choices is not None and not _is_tuple(hint):
        keywords["choices"] = option.choices
        if option.text and default is not dataclasses.MISSING:
            keywords["default"] = option.text(default)
    else:
        keywords["type"] = option.parse or _scalar_type(hint)
    if option.nargs or option.repeatable:
        keywords.update(nargs=option.nargs, default=None, action="append" if option.repeatable else "store")
    return keywords


def add_arguments(parser: argparse.ArgumentParser, settings_class) -> None:
    """A flag for each setting of ``settings_class`` (and of its nested settings), in field order."""
    hints = typing.get_type_hints(settings_class)
    nested = nested_settings(settings_class)
    for field in dataclasses.fields(settings_class):
        option = option_of(field)
        if field.name in nested:
            add_arguments(parser, nested[field.name])
        elif option is not None and option.command_line:
            parser.add_argument(flag_of(field.name, option), **_argument(field, option, hints[field.name]))


def settings_from_arguments(settings_class, arguments: argparse.Namespace, **given):
    """``settings_class`` from the flags :func:`add_arguments` added, parsed into ``arguments``; ``given``: the
    values of fields that come from elsewhere (a stage's own flags)."""
    nested = nested_settings(settings_class)
    values = {}
    for field in dataclasses.fields(settings_class):
        option = option_of(field)
        if field.name in given:
            continue
        if field.name in nested:
            values[field.name] = settings_from_arguments(nested[field.name], arguments)
        elif option is not None and option.command_line:
            value = getattr(arguments, field.name)
            if option.nargs or option.repeatable:
                value = _default(field) if value is None else tuple(value)
            elif option.choices is not None and option.parse and isinstance(value, str):
                value = option.parse(value)
            values[field.name] = value
    return settings_class(**values, **given)


def _field(settings_class, name: str) -> tuple[dataclasses.Field, Option]:
    for field in dataclasses.fields(settings_class):
        if field.name == name and option_of(field) is not None:
            return field, option_of(field)
    raise RealfakeError(f"{settings_class.__name__} has no setting {name!r}")


def from_config(settings_class, name: str, value):
    """A config value (YAML: lists, names, numbers) as the value of setting ``name`` of ``settings_class``, as
    the command line gives it: a list is a tuple, a chosen name is parsed (``train.model``), an integer of a
    float setting is a float, the text of a path a Path."""
    field, option = _field(settings_class, name)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, str) and option.parse and option.choices is not None:
        return option.parse(value)
    scalar_type = _scalar_type(typing.get_type_hints(settings_class)[name])
    if (scalar_type is float and type(value) is int) or (scalar_type is Path and isinstance(value, str)):
        return scalar_type(value)
    return value


def command_line(settings_class, values: dict) -> list[str]:
    """The ``realfake`` flags that give the settings of ``settings_class`` these config values ({setting name:
    value}): the value flags in the order given, then the switches. None leaves a flag out; a switch that is off
    by default is given only when on; one that is on by default is given either way (``--augment`` or
    ``--no-augment``)."""
    words, switches = [], []
    for name, value in values.items():
        field, option = _field(settings_class, name)
        flag = flag_of(name, option)
        if isinstance(value, bool):
            if field.default:
                switches.append(flag if value else "--no-" + flag.removeprefix("--"))
            elif value:
                switches.append(flag)
        elif value is not None:
            text = option.text(from_config(settings_class, name, value)) if option.text else str(value)
            words += [flag, text]
    return words + switches


# -- command-line text of values that are not one word ------------------------------------------------------------


def parse_letters(text: str) -> tuple[str, ...]:
    """ "grz" (or "g,r,z") -> ("g", "r", "z")."""
    return tuple(text.replace(",", "").strip())


def letters_text(values: tuple[str, ...]) -> str:
    """("g", "r", "z") -> "grz"."""
    return "".join(values)


def parse_names(text: str) -> tuple[str, ...]:
    """ "a,b" -> ("a", "b"); "none" (or "") -> ()."""
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(name.strip() for name in text.split(","))


def names_text(values: tuple[str, ...]) -> str:
    """("a", "b") -> "a,b"; () -> "none"."""
    return ",".join(values) or "none"


def parse_integers(text: str) -> tuple[int, ...]:
    """ "18,36,54" -> (18, 36, 54)."""
    return tuple(int(item) for item in text.split(","))


def parse_name_path(text: str) -> tuple[str, Path]:
    """ "ring_only=results/evaluate/ring_only/predictions.parquet" -> ("ring_only", Path(...))."""
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=FILE")
    return name, Path(path)
