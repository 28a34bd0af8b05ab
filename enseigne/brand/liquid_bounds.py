"""Bounded Liquid: every render, previews and sending alike, does bounded work for any template.

python-liquid's own limits count loop iterations, the local namespace and (optionally) the
output, but a filter may still build any amount of text in one expression (a chain of
``replace`` multiplies its input at each step) and a range literal feeds a filter millions
of items. Here every filter is wrapped: its inputs and result are measured against the
limits below, and each filter call and loop checks the render's time budget. The output
limit always holds: templates that can loop count each write (characters, cheaper than
python-liquid's UTF-8 encoding of every write); loop-free templates, whose worst case is
known when they are parsed (each output at most one bounded value), are measured once at
the end, so the per-recipient render on the sending path pays nothing per write.
"""

from __future__ import annotations

import functools
import re
import time
from io import StringIO
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from liquid import BoundTemplate, Environment, RenderContext
from liquid.exceptions import OutputStreamLimitError, ResourceLimitError
from liquid.output import LimitedStringIO

# The bounds (characters, items, seconds). An e-mail is clipped by Gmail past 102 KB, so
# 2 million characters of output is already twenty times what anyone reads; the longest
# zone value is 5,000 characters, so one filter result of 100,000 is generous.
OUTPUT_LIMIT_CHARS = 2_000_000
VALUE_LIMIT_CHARS = 100_000
# A list a filter makes or reads (split, concat, a range literal…): ten times the loop limit.
ITEMS_LIMIT = 10_000
LOOP_ITERATION_LIMIT = 1_000  # nested loops multiply: (1..100) inside (1..100) is 10,000
# Wall clock from a render's first filter or loop; a preview answers within it, and a
# message whose render overruns it is refused with the reason (the pipeline fails that row).
RENDER_TIME_LIMIT_SECONDS = 2.0
# Loop-free templates render without a per-write counter when their worst case
# (source + one bounded value per output or tag) stays under this many characters.
LOOP_FREE_PEAK_CHARS = 16_000_000
# Numbers: a chain of ``times`` grows digits; Python refuses to print past 4,300 digits.
NUMBER_LIMIT_BITS = 1_024


class RenderLimitError(ResourceLimitError):
    """A bound of this module was reached (the message says which, in the user's language)."""


class OutputLimitError(RenderLimitError, OutputStreamLimitError):
    """The whole output is over ``OUTPUT_LIMIT_CHARS`` (python-liquid's class, for callers)."""


def _number(value: int) -> str:
    return number_format(value, force_grouping=True)


def _too_long(what: str, length: int, limit: int) -> RenderLimitError:
    return RenderLimitError(
        _("%(what)s would make %(length)s characters; the limit is %(max)s.")
        % {"what": what, "length": _number(length), "max": _number(limit)},
        token=None,
    )


def _too_many(what: str, count: int) -> RenderLimitError:
    return RenderLimitError(
        _("%(what)s holds %(count)s items; the limit is %(max)s.")
        % {"what": what, "count": _number(count), "max": _number(ITEMS_LIMIT)},
        token=None,
    )


def output_too_long(length: int) -> OutputLimitError:
    return OutputLimitError(
        _("The message would make %(length)s characters; the limit is %(max)s.")
        % {"length": _number(length), "max": _number(OUTPUT_LIMIT_CHARS)},
        token=None,
    )


class CharLimitedStringIO(LimitedStringIO):
    """python-liquid's limited buffer, counting characters instead of encoding every write."""

    def write(self, text: str) -> int:
        self.size += len(text)
        if self.size > self.limit:
            raise output_too_long(self.size)
        return StringIO.write(self, text)


def _spend(context: Any) -> None:
    """The time budget, started by the first filter or loop of a render."""
    deadline = context.deadline
    now = time.monotonic()
    if not deadline:
        context.deadline = now + RENDER_TIME_LIMIT_SECONDS
    elif now > deadline:
        raise RenderLimitError(
            _("Rendering took more than %(seconds)s seconds: simplify the merge tags.")
            % {"seconds": RENDER_TIME_LIMIT_SECONDS},
            token=None,
        )


class BoundedContext(RenderContext):
    # Set on first use: a render without filters or loops makes no clock call at all.
    # (A class default rather than a slot: reading an unset slot raises, which costs more
    # than the whole check.)
    deadline = 0.0

    def raise_for_loop_limit(self, length: int = 1) -> None:
        super().raise_for_loop_limit(length)
        _spend(self)

    def filter(self, name: str, token: Any) -> Any:  # noqa: A003 - python-liquid's name
        _spend(self)  # each filter call spends from the render's budget
        return super().filter(name, token)

    def get_buffer(self, buf=None) -> StringIO:  # capture blocks
        if self.env.output_stream_limit is None:
            return StringIO()
        carry = buf.size if isinstance(buf, LimitedStringIO) else 0
        return CharLimitedStringIO(limit=self.env.output_stream_limit - carry)


class CountedTemplate(BoundTemplate):
    """A template that may loop: every write is counted."""

    context_class = BoundedContext

    def _get_buffer(self) -> StringIO:
        return CharLimitedStringIO(limit=OUTPUT_LIMIT_CHARS)


class MeasuredTemplate(BoundTemplate):
    """A loop-free template: its output is measured once, when it is complete."""

    context_class = BoundedContext

    def render(self, *args: Any, **kwargs: Any) -> str:
        # BoundTemplate.render's own four lines, plus the measure: the sending path renders
        # this for every recipient, and a super() call with the data repacked costs more.
        context = self.context_class(self, globals=self.make_globals(dict(*args, **kwargs)))
        buffer = StringIO()
        self.render_with_context(context, buffer)
        output = buffer.getvalue()
        if len(output) > OUTPUT_LIMIT_CHARS:
            raise output_too_long(len(output))
        return output


def _printed_length(item: Any) -> int:
    if isinstance(item, str):
        return len(item)
    if isinstance(item, int):
        return len(str(item))
    return 24  # anything else prints as a short word or number


def _check_ranges(name: str, left: Any, args: tuple) -> None:
    if type(left) is range and len(left) > ITEMS_LIMIT:
        raise _too_many(_("A range"), len(left))
    for arg in args:
        if type(arg) is range and len(arg) > ITEMS_LIMIT:
            raise _too_many(_("A range"), len(arg))


# The filters whose result can be many times their input are measured before they run.
def _check_replace(name: str, left: Any, args: tuple) -> None:
    _check_ranges(name, left, args)
    if isinstance(left, str) and args:
        old, new = str(args[0]), str(args[1]) if len(args) > 1 else ""
        count = left.count(old) if name == "replace" else 1
        length = len(left) + count * (len(new) - len(old))
        if length > VALUE_LIMIT_CHARS:
            raise _too_long(f"« {name} »", length, VALUE_LIMIT_CHARS)


def _check_join(name: str, left: Any, args: tuple) -> None:
    _check_ranges(name, left, args)
    if isinstance(left, (list, tuple, range)):
        if len(left) > ITEMS_LIMIT:
            raise _too_many(f"« {name} »", len(left))
        separator = len(str(args[0])) if args else 1
        length = separator * max(0, len(left) - 1) + sum(_printed_length(i) for i in left)
        if length > VALUE_LIMIT_CHARS:
            raise _too_long(f"« {name} »", length, VALUE_LIMIT_CHARS)


_INPUT_CHECKS = {
    "replace": _check_replace,
    "replace_first": _check_replace,
    "replace_last": _check_replace,
    "join": _check_join,
}


def _check_result(name: str, result: Any) -> None:
    if isinstance(result, str):
        if len(result) > VALUE_LIMIT_CHARS:
            raise _too_long(f"« {name} »", len(result), VALUE_LIMIT_CHARS)
    elif isinstance(result, (list, tuple)):
        if len(result) > ITEMS_LIMIT:
            raise _too_many(f"« {name} »", len(result))
    elif isinstance(result, int) and result.bit_length() > NUMBER_LIMIT_BITS:
        raise RenderLimitError(
            _("« %(filter)s » made a number too large to print.") % {"filter": name},
            token=None,
        )


def bounded_filter(name: str, func: Any) -> Any:
    """``func`` measured: its inputs before it runs, its result after. It keeps ``func``'s
    ``with_context``/``with_environment`` flags, so python-liquid passes the same arguments
    (a filter without them costs no extra ``partial`` per call)."""

    check_input = _INPUT_CHECKS.get(name, _check_ranges)

    @functools.wraps(func)
    def bounded(left: Any, *args: Any, **kwargs: Any) -> Any:
        check_input(name, left, args)
        result = func(left, *args, **kwargs)
        _check_result(name, result)
        return result

    bounded.__dict__.pop("filter_async", None)  # only synchronous rendering is used
    return bounded


class BoundedEnvironment(Environment):
    """Liquid with every limit on, and without the tags that load other templates."""

    template_class = CountedTemplate
    loop_iteration_limit = LOOP_ITERATION_LIMIT
    output_stream_limit = OUTPUT_LIMIT_CHARS
    context_depth_limit = 30
    local_namespace_limit = 20_000

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        for tag in ("include", "render"):
            self.tags.pop(tag, None)
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}


class LoopFreeEnvironment(BoundedEnvironment):
    """The same limits; the output measured at the end instead of at every write."""

    template_class = MeasuredTemplate
    output_stream_limit = None


# Any tag that can repeat output: for, tablerow, and `liquid` (which may hold a for).
_LOOPING_TAG = re.compile(r"\{%-?\s*(for|tablerow|liquid)\b")


def measured_at_the_end(source: str) -> bool:
    """True when ``source`` cannot loop and its worst case fits ``LOOP_FREE_PEAK_CHARS``:
    each output or tag writes at most one bounded value, the rest is the source itself."""
    if _LOOPING_TAG.search(source):
        return False
    writers = source.count("{{") + source.count("{%")
    return len(source) + writers * VALUE_LIMIT_CHARS <= LOOP_FREE_PEAK_CHARS
