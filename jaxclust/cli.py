"""The contract of the commands in launch/: a user's mistake (a flag, a config file, a workdir, a data
set, a checkpoint) is one sentence on stderr starting with "error: ", exit code 2, no traceback, and
nothing written; --help exits 0.

    if __name__ == "__main__":
        cli.run(main, required=("workdir",))       # main() takes no arguments; flags are absl's FLAGS

`main` raises `UserError` (or one of `USER_ERRORS`) for such a mistake. Config files named by a flag
(--config=FILE) are loaded before absl parses the flags, so that a missing file, a syntax error or an
exception inside it is told in one sentence rather than as config_flags' traceback.
"""
from __future__ import annotations

import re
import sys
from typing import NoReturn

from absl import app, flags, logging

HELP_FLAGS = ("help", "helpshort", "helpfull", "?")


class UserError(Exception):
    """A mistake on the command line or in the files it names: one sentence, exit code 2."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean a mistake of the user's, not a bug: told in one sentence. (A command
    whose library functions report bad input as ValueError / FileNotFoundError, as jaxclust.load does,
    adds those with `run(errors=...)`.)"""
    from jaxclust.config import ConfigError
    from jaxclust.convert import ConversionError
    from jaxclust.data.sources import DataError
    from jaxclust.workdir import WorkdirError

    return UserError, ConfigError, DataError, WorkdirError, ConversionError


def fail(message) -> NoReturn:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)  # one line, whatever the message
    sys.exit(2)


def flag_value(argv, name: str) -> str | None:
    """The value of --name in `argv` (--name=VALUE or --name VALUE; the last one, as absl), or None."""
    value = None
    for i, arg in enumerate(argv[1:], 1):
        if arg == "--":
            break
        key, equals, rest = arg.lstrip("-").partition("=")
        if arg.startswith("-") and key == name:
            value = rest if equals else (argv[i + 1] if i + 1 < len(argv) else None)
    return value


def check_config_file(path: str) -> None:
    """`fail`s unless the config file at `path` loads and its get_config() returns a ConfigDict."""
    import ml_collections

    from jaxclust.config import ConfigError, load_config_file

    if not path:
        fail("--config is empty; give a config file, e.g. --config=configs/propos_digits.py.")
    try:
        cfg = load_config_file(path)
    except ConfigError as error:
        fail(error)
    if not isinstance(cfg, ml_collections.ConfigDict):
        fail(f"config file {path!r}: get_config() returned a {type(cfg).__name__}, not a ConfigDict.")


def parse_flags(argv, config_flags=("config",)):
    """absl's flag parsing with every mistake told in one sentence: a config file (named by one of
    `config_flags`) that is missing or fails to load, a mistyped config key or value, a flag that does
    not exist or has a value of the wrong type. --help, --helpshort, --helpfull exit 0."""
    args = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    asked = [a.lstrip("-") for a in args if a.startswith("-") and a.lstrip("-") in HELP_FLAGS]
    if asked:  # absl's own --help exits 1
        app.usage(shorthelp="helpfull" not in asked, writeto_stdout=True)
        if "config" in config_flags:
            print("\nEvery config key with its value: --config=FILE --config_help. All flags: --helpfull.")
        sys.exit(0)
    for name in config_flags:
        path = flag_value(argv, name)
        if path is not None and name in flags.FLAGS:
            check_config_file(path)
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError) as error:  # ml_collections: a config key that does not exist
        key = re.findall(r"\w+", str(error))[0]
        hint = re.search(r'Did you mean "\w+"', str(error))
        fail(f"bad command line: unknown config key {key!r}{'; ' + hint.group(0).lower() + '?' if hint else ''}")
    except (flags.Error, TypeError, ValueError) as error:
        message = str(error).replace("\\n", " ").replace("\\'", "'")
        if len(message) > 1 and message[0] == message[-1] and message[0] in "'\"":  # repr quotes
            message = message[1:-1]
        fail(f"bad command line: {message}")


def run(main, required=(), errors=(), quiet_libraries: bool = True) -> None:
    """app.run(main) under the contract: stray positional arguments, missing `required` flags (absl's
    own message is three sentences per flag) and `user_errors()` (and `errors`, e.g. the ImportError of
    an optional dependency) raised by `main()` are one sentence, exit code 2. With `quiet_libraries`, library INFO logs (orbax logs every checkpoint) stay off the
    console unless --verbosity is given."""
    def wrapped(argv):
        if len(argv) > 1:
            fail(f"unexpected arguments: {' '.join(argv[1:])} (flags are written --name=value).")
        missing = [f"--{name}" for name in required if flags.FLAGS[name].value is None]
        if missing:
            fail(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required.")
        if quiet_libraries and not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        try:
            main()
        except (*user_errors(), *errors) as error:
            fail(error)

    app.run(wrapped, flags_parser=parse_flags)
