"""Every CSV download the UI offers goes out through ``csv_download``: one format for all of them
(UTF-8 with a byte-order mark, ``;`` unless the user chose ``,``), cells made safe by
``csvsafe``. The choice arrives as ``?sep=comma`` or ``?sep=semicolon`` on an export link and is
kept in the session, so the next export of any kind uses it without asking again."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest, StreamingHttpResponse

from enseigne.lib.csvsafe import DEFAULT_SEPARATOR, SEPARATORS, csv_rows

SESSION_KEY = "csv_separator"
PARAMETER = "sep"


def separator_for(request: HttpRequest) -> str:
    """The separator's name for this download: the one asked for on the link (remembered), else
    the one remembered, else the default."""
    asked = request.GET.get(PARAMETER)
    if asked in SEPARATORS:
        if request.session.get(SESSION_KEY) != asked:
            request.session[SESSION_KEY] = asked
        return asked
    remembered = request.session.get(SESSION_KEY)
    return remembered if remembered in SEPARATORS else DEFAULT_SEPARATOR


def csv_download(
    request: HttpRequest,
    *,
    filename: str,
    header: Iterable[object],
    rows: Iterable[Iterable[object]],
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        csv_rows(header, rows, separator=SEPARATORS[separator_for(request)]),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
