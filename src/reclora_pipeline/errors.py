"""Errors a user fixes in their data or parameters (reported without a traceback)."""


class UserInputError(ValueError):
    """A problem in the user's input files or parameters; the message says how to fix it."""


class ParameterError(UserInputError):
    """A parameter has a value the pipeline cannot use; the message names it and the accepted values."""
