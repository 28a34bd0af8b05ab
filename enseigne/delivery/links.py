"""Click tracking and the open pixel, added to each rendered e-mail.

Every ``http(s)`` link of a message (HTML ``href`` and the URLs of the text part) becomes
``<BASE_URL>/c/<row>-<link>.<mac>``: the ledger row and a :class:`Link` of this campaign
and unit, under one MAC. The click endpoint redirects only to the URL of the link the
token names, so a token altered by anyone redirects nowhere. The unsubscribe link is left
as it is (it must work without us and is not a click), and so are ``mailto:``/``tel:``.

The pixel names the campaign and the unit; it names the ledger row only for a contact
who accepted per-person open tracking (COMPLIANCE.md, "Open tracking").
"""

from __future__ import annotations

import functools
import hashlib
import html as html_lib
import re

from enseigne.delivery.models import Link
from enseigne.lib.signing import sign_ids

# An href of an <a> or <area>, quoted; the URL stops at the quote.
_HREF = re.compile(
    r"""(<(?:a|area)\b[^>]*?\shref\s*=\s*)(["'])(https?://[^"'<>\s]+)\2""", re.IGNORECASE
)
_TEXT_URL = re.compile(r"""https?://[^\s<>"']+""")
# Punctuation that ends a sentence rather than a URL written in running text.
_TRAILING = ".,;:!?)]}»"


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


class LinkRewriter:
    """One campaign's links for one unit: created on first sight, then reused for every recipient."""

    def __init__(
        self, *, campaign_id: int, unit_id: int, unit_path: str, base_url: str, keep_prefix: str
    ) -> None:
        self.campaign_id, self.unit_id, self.unit_path = campaign_id, unit_id, unit_path
        self.base_url = base_url.rstrip("/")
        self.keep_prefix = keep_prefix
        self.ids: dict[str, int] = {}

    def link_id(self, url: str) -> int:
        link_id = self.ids.get(url)
        if link_id is None:
            link, _ = Link.objects.get_or_create(
                campaign_id=self.campaign_id,
                unit_id=self.unit_id,
                url_hash=url_hash(url),
                defaults={"url": url, "unit_path": self.unit_path, "position": len(self.ids) + 1},
            )
            link_id = self.ids[url] = link.pk
        return link_id

    def tracked(self, url: str, recipient_id: int) -> str:
        return f"{self.base_url}/c/{sign_ids('click', recipient_id, self.link_id(url))}"

    def html(self, html: str, recipient_id: int) -> str:
        def swap(match: re.Match) -> str:
            url = html_lib.unescape(match.group(3))
            if url.startswith(self.keep_prefix):
                return match.group(0)
            return (
                f"{match.group(1)}{match.group(2)}{self.tracked(url, recipient_id)}{match.group(2)}"
            )

        return _HREF.sub(swap, html)

    def text(self, text: str, recipient_id: int) -> str:
        def swap(match: re.Match) -> str:
            found = match.group(0)
            url = found.rstrip(_TRAILING)
            if url.startswith(self.keep_prefix) or not url:
                return found
            return self.tracked(url, recipient_id) + found[len(url) :]

        return _TEXT_URL.sub(swap, text)

    @functools.cached_property
    def _aggregate_pixel(self) -> str:
        return self._pixel_tag(0)

    def _pixel_tag(self, recipient_id: int) -> str:
        token = sign_ids("open", self.campaign_id, self.unit_id, recipient_id)
        return (
            f'<img src="{self.base_url}/o/{token}.gif" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0">'
        )

    def pixel(self, html: str, recipient_id: int) -> str:
        """The open pixel before ``</body>`` (or at the end); ``recipient_id`` 0 = counted in aggregate only."""
        tag = self._aggregate_pixel if recipient_id == 0 else self._pixel_tag(recipient_id)
        at = html.lower().rfind("</body>")
        return html[:at] + tag + html[at:] if at >= 0 else html + tag
