"""The one exception type for mistakes a user can make (bad file, bad record, bad option).

The CLI prints its message as a single line on stderr and exits with status 2; any other exception
is a bug in car-select and keeps its traceback.
"""


class CarSelectError(Exception):
    """A user-facing error whose message is one line naming the file, record and field involved."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line


class CarSelectWarning(UserWarning):
    """Something the user should know about a run that still completes (one line; the CLI prints it
    on stderr as `car-select: warning: ...`)."""


class SettingError(CarSelectError):
    """A CarSelectError about settings (Config fields), worded with their field names: `template` holds
    one `{}` per name in `fields`. A front end that spells settings differently (the CLI's flags)
    rewords it with `named`."""

    def __init__(self, template: str, *fields: str):
        self.template, self.fields = template, fields
        super().__init__(template.format(*fields))

    def named(self, name_of) -> str:
        """The message with each field name replaced by `name_of(field)`."""
        return " ".join(self.template.format(*map(name_of, self.fields)).split())
