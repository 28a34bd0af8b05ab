"""The click bench's Django settings: the project's, with a URLconf that adds one bare endpoint."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "_clicks_urls"
