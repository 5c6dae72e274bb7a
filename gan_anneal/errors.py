"""The one exception type for user mistakes: the CLI prints its message and exits with code 2."""


class UserError(Exception):
    """Bad input from the user (config, paths, data). The message must say what was wrong and what is right."""
