"""Was it a person or a program? Opens and clicks made by machines are flagged, not counted.

Mail security gateways fetch every link of a message to check it, privacy proxies load
every image when the message arrives, link-preview bots fetch what is pasted. None of
that is a reader's interest. The signs used, from the request alone:

- no user agent, or one that names a library, a crawler or a security product;
- Apple Mail Privacy Protection: images are loaded through Apple's proxy (addresses in
  17.0.0.0/8) with the bare user agent ``Mozilla/5.0``, whether or not anyone reads.

A HEAD request never counts: the endpoints answer it without recording anything.
"""

from __future__ import annotations

import ipaddress
import re

# Case-insensitive fragments of user agents that are programs, not mail clients or browsers.
_PROGRAMS = re.compile(
    r"bot\b|bot/|crawler|spider|slurp|preview|scanner|python-|python/|curl/|wget|go-http-client|java/|okhttp|"
    r"libwww|httpclient|axios|node-fetch|headless|phantomjs|barracuda|mimecast|proofpoint|symantec|messagelabs|"
    r"forcepoint|trendmicro|trend micro|sophos|fortinet|fortiguard|cisco|ironport|safelinks|microsoft office|"
    r"ms-office|skypeuripreview|whatsapp|facebookexternalhit|slackbot|discordbot|linkedinbot|twitterbot|"
    r"google-safety|googlesafebrowsing|yahoo! slurp|bingpreview|zgrab|masscan|nmap",
    re.IGNORECASE,
)
_APPLE_PROXY = ipaddress.ip_network("17.0.0.0/8")


def is_machine(user_agent: str, ip_address: str | None = None, *, kind: str = "click") -> bool:
    agent = (user_agent or "").strip()
    if not agent or _PROGRAMS.search(agent):
        return True
    if kind == "open" and agent == "Mozilla/5.0":
        return True
    if kind == "open" and ip_address:
        try:
            return ipaddress.ip_address(ip_address) in _APPLE_PROXY
        except ValueError:
            return False
    return False
